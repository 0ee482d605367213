#!/usr/bin/env bash
# The OLTP peer benchmarks and their reports, in one command:
#
#   bash scripts/bench.sh                 # full run: redb's suite + the OLTP suite, 1M entries
#   bash scripts/bench.sh --quick         # smoke run (20k entries, short phases; not to quote)
#   bash scripts/bench.sh --gate BASE     # also the wall-clock gate against commit BASE
#
# Writes benchmark_results/<date>/peers.json, oltp-peers.json and oltp-peers.html (the
# dashboard page: inline SVG, rendered in headless Chromium and checked), the peers
# dashboard, and flamegraphs of the database on both suites (perf, cpu-clock, DWARF stacks)
# under benchmark_results/<date>/flamegraphs/. Environment knobs of the bench (PEERS_*,
# OLTP_*) pass through; see benches/peers/src/main.rs and oltp_main.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 gate=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --gate) gate="$2"; shift ;;
        *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    export LIGHTNING_BENCH_QUICK=1 PEERS_ENTRIES="${PEERS_ENTRIES:-20000}" PEERS_ROUNDS="${PEERS_ROUNDS:-1}"
    export OLTP_PHASE_SECS="${OLTP_PHASE_SECS:-0.2}" OLTP_CELL_SECS="${OLTP_CELL_SECS:-0.1}"
    dash_quick=--quick
else
    dash_quick=
fi

cargo bench -p lightning-peers
date_dir="benchmark_results/$(date -u +%F)"
python3 scripts/dashboard.py
python3 scripts/dashboard.py --suite oltp $dash_quick --check
python3 scripts/dashboard.py --crates --check

if command -v perf > /dev/null; then
    mkdir -p "$date_dir/flamegraphs"
    bin=$(ls -t target/release/deps/peers-* | grep -v '\.d$' | head -1)
    for suite in redb oltp; do
        data=$(mktemp)
        PEERS_SUITE=$suite PEERS_ONLY=lightning_db PEERS_ROUNDS=1 PEERS_ENTRIES=200000 \
            OLTP_THREADS=1,16 OLTP_PHASE_SECS=0.5 OLTP_CELL_SECS=0.5 PEERS_SYNC_SECS=0.5 \
            perf record -q -F 199 -e cpu-clock --call-graph dwarf,16384 -o "$data" -- "$bin" --bench > /dev/null
        perf script -i "$data" 2> /dev/null |
            python3 scripts/flamegraph.py "lightning_db, $suite suite (200k entries)" \
            > "$date_dir/flamegraphs/lightning_db-$suite.svg"
        rm -f "$data"
        echo "wrote $date_dir/flamegraphs/lightning_db-$suite.svg"
    done
else
    echo "bench.sh: perf not found: no flamegraphs (apt-get install linux-perf)"
fi

if [ -n "$gate" ]; then
    python3 scripts/wallclock-gate.py "$gate"
fi
