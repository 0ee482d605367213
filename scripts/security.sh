#!/usr/bin/env bash
# Security and evidence checks (issue #19, docs/adr/014-security-posture-verification.md).
# Writes security_reports/<date>/: one file per check and SUMMARY.md (the table below).
#
#   scripts/security.sh          every check: the fast set, then AddressSanitizer over the
#                                crash and fuzz-corpus suites, longer fuzzing, coverage and the
#                                packaging dry run
#   scripts/security.sh --fast   the part .ci/run runs (a few minutes)
#   scripts/security.sh --fuzz   the nightly-style long fuzzing run alone: every target for
#                                LIGHTNING_FUZZ_SECONDS (default 600) seconds, corpora kept
#                                in fuzz/corpus/ between runs
#
# Installs what it needs when missing (cargo-deny, cargo-fuzz, cargo-llvm-cov from crates.io;
# detect-secrets from PyPI; llvm-19 from Debian for the coverage tools). Exit status: the
# number of failed checks (0: clean). Skipped checks say why in their file and the summary.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=full
[[ "${1:-}" == "--fast" ]] && mode=fast
[[ "${1:-}" == "--fuzz" ]] && mode=fuzz
day=$(date -u +%F)
out=security_reports/$day
mkdir -p "$out"
rows=()
failed=0

check() { # check NAME WHAT COMMAND... : runs COMMAND, its output into NAME.txt
  local name=$1 what=$2
  shift 2
  local t0 st
  t0=$(date +%s)
  if "$@" >"$out/$name.txt" 2>&1; then st=pass; else
    st=FAIL
    failed=$((failed + 1))
  fi
  rows+=("| $name | $st | $(($(date +%s) - t0)) s | $what |")
  printf '  %-22s %s\n' "$name" "$st"
}

report() { # report NAME WHAT COMMAND... : like check, but findings do not fail the run
  local name=$1 what=$2
  shift 2
  local t0 st
  t0=$(date +%s)
  if "$@" >"$out/$name.txt" 2>&1; then st=pass; else st="findings (a release gate)"; fi
  rows+=("| $name | $st | $(($(date +%s) - t0)) s | $what |")
  printf '  %-22s %s\n' "$name" "$st"
}

skip() { # skip NAME WHY
  echo "skipped: $2" >"$out/$1.txt"
  rows+=("| $1 | skipped | - | $2 |")
  printf '  %-22s skipped (%s)\n' "$1" "$2"
}

# Unstable compiler flags (sanitizers, the fuzzers' instrumentation) on the pinned stable
# toolchain: it ships the sanitizer runtimes, and no nightly toolchain can be fetched here.
# Only these checks use it; no shipped build does (ADR 014).
unstable() { RUSTC_BOOTSTRAP=1 "$@"; }

have_cargo() { cargo "$1" --version >/dev/null 2>&1; }
install_cargo() { have_cargo "$1" || cargo install --locked "cargo-$1" >/dev/null 2>&1; }

echo "==> security checks ($mode) into $out"

# --- Fuzzing -------------------------------------------------------------------------------
fuzz_targets() { (cd fuzz && cargo fuzz list 2>/dev/null); }
fuzz_run() { # fuzz_run SECONDS
  local secs=$1 t
  install_cargo fuzz || return 1
  for t in $(fuzz_targets); do
    echo "== $t ($secs s)"
    # The committed seeds (valid inputs the fuzzer would take long to find) beside the corpus.
    local dirs=()
    [[ -d fuzz/seeds/$t ]] && dirs=("corpus/$t" "seeds/$t") && mkdir -p "fuzz/corpus/$t"
    (cd fuzz && unstable cargo fuzz run "$t" "${dirs[@]}" -- -max_total_time="$secs" 2>&1 |
      grep -E "Done|ERROR|SUMMARY|panicked|deadly" ) || return 1
  done
}
fuzz_long() { fuzz_run "${LIGHTNING_FUZZ_SECONDS:-$([[ $mode == fuzz ]] && echo 600 || echo 60)}"; }

if [[ $mode == fuzz ]]; then
  check fuzz-nightly "every fuzz target ${LIGHTNING_FUZZ_SECONDS:-600} s, corpora kept" fuzz_long
else

# --- Source audits -----------------------------------------------------------------------
check unsafe "every unsafe block with its SAFETY rationale" python3 scripts/audit.py unsafe

panic_lints=(-W clippy::unwrap_used -W clippy::expect_used -W clippy::panic
  -W clippy::unreachable -W clippy::indexing_slicing -W clippy::todo -W clippy::unimplemented)
panics() {
  local json
  json=$(mktemp)
  cargo clippy --workspace --lib --all-features --locked --message-format=json -- \
    "${panic_lints[@]}" >"$json" 2>/dev/null
  python3 scripts/audit.py panics "$json"
  local st=$?
  rm -f "$json"
  return $st
}
# The listing is the work list: each site gets a `// CANNOT FIRE:` comment or goes (ADR 014).
report panics "unwrap/expect/panic/unreachable/indexing in library code, each with why it cannot fire" panics

# --- Secrets -------------------------------------------------------------------------------
secrets() {
  command -v detect-secrets-hook >/dev/null 2>&1 || pip install --quiet detect-secrets
  detect-secrets --version
  # New findings against the audited baseline fail; the baseline lists the known ones.
  git ls-files -z | xargs -0 detect-secrets-hook --baseline .secrets.baseline || return 1
  local known
  known=$(python3 -c 'import json; print(sum(len(v) for v in json.load(open(".secrets.baseline"))["results"].values()))')
  echo "no secrets beyond the audited baseline (.secrets.baseline: $known findings, each audited: not a secret)"
}
check secrets "detect-secrets over every tracked file against .secrets.baseline" secrets

# --- Dependencies --------------------------------------------------------------------------
deps() {
  install_cargo deny || return 1
  cargo deny --version
  cargo deny --all-features check licenses bans sources
  local db="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
  # A database is a directory under advisory-dbs (a failed fetch leaves only a lock file).
  if [[ -n "$(find "$db" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]]; then
    echo "advisories: checked against the local copy in $db (not fetched: no network)"
    cargo deny --offline --all-features check advisories
  else
    echo "advisories: NOT CHECKED — no RustSec database could be fetched (this machine reaches"
    echo "only the package registries) and no local copy is at $db."
  fi
}
check deny "cargo deny: licences, bans, sources (advisories when a local database exists)" deps

dep_count() {
  local n
  n=$(cargo tree -p lightning-db --all-features -e normal --prefix none --locked |
    sed 's/ (\*)//; s/ (proc-macro)//' | sort -u | wc -l)
  echo "lightning-db, all features, non-dev dependency tree: $n crates (itself included; limit 100)"
  [[ $n -lt 100 ]]
}
check dep-count "lightning-db's non-dev dependency tree with all features < 100 crates" dep_count

fuzz_smoke() { fuzz_run 5; }
check fuzz-smoke "every fuzz target 5 s (libFuzzer + ASan)" fuzz_smoke

if [[ $mode == full ]]; then
  # --- Sanitizers --------------------------------------------------------------------------
  asan() {
    local target=x86_64-unknown-linux-gnu
    # Crash, chaos and fault suites of every crate that has them, and the fuzz corpora
    # replayed as tests; LeakSanitizer runs with it.
    RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
      CARGO_TARGET_DIR=target/asan unstable cargo test --locked --target $target \
      -p lightning-page -p lightning-wal -p lightning-btree -p lightning-db \
      -p lightning-tests --tests -- crash fault power chaos torn
  }
  check asan "AddressSanitizer (+ LeakSanitizer) over the crash and fault suites" asan
  check fuzz-long "every fuzz target ${LIGHTNING_FUZZ_SECONDS:-60} s" fuzz_long

  # Miri and ThreadSanitizer need toolchain components this machine cannot fetch (ADR 014).
  if cargo miri --version >/dev/null 2>&1; then
    check miri "Miri over the pure decoders and the unsafe module" \
      cargo miri test -p lightning-compress -p lightning-page --lib
  else
    skip miri "the miri component is not installed and cannot be fetched here (ADR 014)"
  fi
  sysroot=$(rustc --print sysroot)
  if [[ -d "$sysroot/lib/rustlib/src/rust/library" ]]; then
    tsan() {
      RUSTFLAGS="-Zsanitizer=thread" CARGO_TARGET_DIR=target/tsan unstable cargo test \
        -Zbuild-std --target x86_64-unknown-linux-gnu -p lightning-cache -p lightning-wal \
        -p lightning-mvcc -p lightning-db --tests -- concurren thread
    }
    check tsan "ThreadSanitizer over the concurrent suites" tsan
  else
    skip tsan "rust-src (for -Zbuild-std) cannot be fetched here; without it TSan reported 2,379 races, all in or behind std's uninstrumented synchronisation (ADR 014)"
  fi

  # --- Coverage ----------------------------------------------------------------------------
  coverage() {
    install_cargo llvm-cov || return 1
    if ! command -v llvm-profdata-19 >/dev/null 2>&1; then
      apt-get install -y -qq llvm-19 >/dev/null 2>&1 || return 1
    fi
    export LLVM_COV=/usr/bin/llvm-cov-19 LLVM_PROFDATA=/usr/bin/llvm-profdata-19
    mkdir -p "$out/coverage"
    cargo llvm-cov nextest --workspace --locked --profile ci \
      --features lightning-db/cli,lightning-columnar/arrow \
      --json --summary-only --output-path "$out/coverage/summary.json" &&
      cargo llvm-cov report --text --output-path target/coverage-lines.txt >/dev/null &&
      python3 scripts/coverage.py "$out/coverage/summary.json" target/coverage-lines.txt \
        >"$out/coverage/critical-paths.md" &&
      cat "$out/coverage/critical-paths.md"
  }
  check coverage "line coverage of the critical paths (>= 80 %)" coverage

  # --- Packaging -----------------------------------------------------------------------------
  check package "cargo package of every published crate, in dependency order" \
    cargo package --workspace --locked --allow-dirty \
    --exclude lightning-tests --exclude lightning-testkit --exclude lightning-peers \
    --exclude lightning-icount
fi
fi

# The full run's summary is SUMMARY.md; a partial run's does not overwrite it.
summary=SUMMARY.md
[[ $mode != full ]] && summary=SUMMARY-$mode.md
{
  echo "# Security and evidence report, $day ($mode)"
  echo
  echo "\`scripts/security.sh$([[ $mode != full ]] && echo " --$mode")\` on $(uname -srm), $(rustc --version)."
  echo "Each check's output is in the file of its name; ADR 014 says what each finding blocks."
  echo
  echo "| check | result | time | what |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "$failed check(s) failed."
} >"$out/$summary"
echo "==> $failed failed; summary: $out/$summary"
exit "$failed"
