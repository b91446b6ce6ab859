#!/usr/bin/env bash
# Cold start (issue "An intake without a hot spot, and a 5 ms cold start"), by hand:
# `benches/cold_start.sh [BIN...]` (default: a release build of this tree). Each binary is started
# as `serve` with the variables the platform sets (the same as `cargo xtask check-package`),
# RUNS times (30), the binaries taking turns, and timed from exec to the first answer on `GET /`
# (the host's readiness probe). Prints the median and the slowest start of each.
# Results: benches/cold_start.last.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  cargo build --release --quiet --bin mfa-recovery
  set -- target/release/mfa-recovery
fi
echo "benches/cold_start.sh, $(nproc) cores, $(date -u +%F)"
echo
cargo run --quiet -p xtask -- cold-start "$@" --runs "${RUNS:-30}"
