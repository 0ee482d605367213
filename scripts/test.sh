#!/usr/bin/env bash
# Runs every test suite: nextest with the `ci` profile, then the doctests, then prints one
# total line. Works on a machine that has only rustup: installs cargo-nextest when missing.
# Scale randomized suites with LIGHTNING_TEST_SCALE=N (default 1); see
# docs/runbooks/build-test-bench.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest (first run only)..."
  cargo install --locked cargo-nextest
fi

status=0
# `lightning-db/cli`: the `lightning` tool and its process tests (tests/cli);
# `lightning-columnar/arrow`: the Arrow conversions and their tests.
cargo nextest run --workspace --locked --profile ci --features lightning-db/cli,lightning-columnar/arrow || status=$?

doc_log=$(mktemp)
trap 'rm -f "$doc_log"' EXIT
cargo test --doc --workspace --locked --features lightning-db/cli,lightning-columnar/arrow 2>&1 | tee "$doc_log" || status=$?

# Totals: nextest's JUnit report plus the doctest summaries.
junit=target/nextest/ci/junit.xml
unit_tests=$(grep -o '<testsuites[^>]*' "$junit" | grep -o ' tests="[0-9]*"' | grep -o '[0-9]*' || echo 0)
unit_failed=$(grep -o '<testsuites[^>]*' "$junit" | grep -o ' failures="[0-9]*"' | grep -o '[0-9]*' || echo 0)
doc_passed=$(grep -o 'test result: [a-zA-Z]*\. [0-9]* passed' "$doc_log" | awk '{s+=$4} END {print s+0}')
doc_failed=$(grep -o '[0-9]* failed;' "$doc_log" | awk '{s+=$1} END {print s+0}')
passed=$(( unit_tests - unit_failed + doc_passed ))
failed=$(( unit_failed + doc_failed ))
echo
echo "tests: ${passed} passed, ${failed} failed"
if [ "$failed" -ne 0 ] && [ "$status" -eq 0 ]; then status=1; fi
exit "$status"
