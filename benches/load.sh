#!/usr/bin/env bash
# The load run (issue "Intake and audit trail that an attacker cannot bend", item 6), by hand:
# `benches/load.sh`. 2,000 intake requests (LOAD_REQUESTS) from 50 concurrent callers over
# Azurite, about 20% of Graph calls answered 429 or 503 (the simulator's `every: 10` faults, one
# of each), the test playing the Functions host against the real binary as the worker, which is
# killed (SIGKILL) halfway through and replaced. It checks that every request ends succeeded
# (or refused with a documented code) and that exactly one pass went out per succeeded request,
# then prints the intake latency (p50/p99 of POST /api/requests, as the callers saw it) and the
# workers' peak memory. Debug build by default (the test binary); PROFILE=release for release.
# Azurite's extent collector is paced to once an hour (benches/azurite-blob-gc.js says why).
# Last results: benches/load.last.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/azurite ] || npm ci --no-audit --no-fund
release=()
[ "${PROFILE:-debug}" = release ] && release=(--release)
LOAD_REQUESTS=${LOAD_REQUESTS:-2000} AZURITE_EXTENT_MEMORY_MB=${AZURITE_EXTENT_MEMORY_MB:-4096} \
  AZURITE_GC_INTERVAL_MS=${AZURITE_GC_INTERVAL_MS:-3600000} cargo test "${release[@]}" --test api load_run -- --ignored --nocapture 2>&1 |
  grep -E '^LOAD|test result|panicked'
