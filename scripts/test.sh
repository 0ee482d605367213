#!/usr/bin/env bash
# Runs every test suite: nextest with the `ci` profile, then the doctests.
# Works on a machine that has only rustup: installs cargo-nextest when it is missing.
# Scale randomized suites with LIGHTNING_TEST_SCALE=N (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest (first run only)..."
  cargo install --locked cargo-nextest
fi
cargo nextest run --workspace --locked --profile ci
cargo test --doc --workspace --locked
