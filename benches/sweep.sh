#!/usr/bin/env bash
# Benchmark of the compliance sweep (issue #7), run by hand: `benches/sweep.sh`.
#
# 1. Users per second and peak RSS over 100,000 and 1,000,000 simulated users (pages of 1,000,
#    pacing lifted: no throttle).
# 2. The run time with the documented reports throttle on in the simulator (5 requests per 10 s
#    per app), against the minimum that throttle allows: the first 5 requests at once, then one
#    every 2 s, so (pages - 5) x 2 s.
#
# It uses the release build of `mfa-recovery sweep --out DIR` (the CLI an administrator runs),
# against `mfa-recovery sim` in another process, so the numbers are the sweep's alone.
# Targets: peak RSS under 64 MiB at a million users; within 10% of the throttle's minimum.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"100000 1000000"}
THROTTLED_USERS=${THROTTLED_USERS:-100000}
PAGE=${PAGE:-1000}
PORT=${SIM_PORT:-7392}

cargo build --release --quiet --bin mfa-recovery
BIN=target/release/mfa-recovery
WORK=$(mktemp -d)
"$BIN" sim --port "$PORT" >"$WORK/sim.log" 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/sim/info" >"$WORK/info.json" && break; sleep 0.1; done

info() { python3 -c "import json,sys; print(json.load(open('$WORK/info.json'))$1)"; }
export AUTH_TENANT_ID=$(info "['tenantId']")
export AUTH_AUDIENCE=$(info "['audience']")
export AUTH_AUTHORITY="http://127.0.0.1:$PORT"
export GRAPH_ENDPOINT="http://127.0.0.1:$PORT"
export IDENTITY_ENDPOINT="http://127.0.0.1:$PORT/msi/token"
export IDENTITY_HEADER=$(info "['identityHeader']")
export AZURE_CLIENT_ID=$(info "['managedIdentityClientId']")
export AUDIT_DIR="$WORK/audit"
export RUST_LOG=warn

report() { curl -sf -X POST "http://127.0.0.1:$PORT/sim/report" -H 'content-type: application/json' -d "$1" >/dev/null; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

echo "| users | pages | seconds | users/s | peak RSS (MiB) |"
echo "|---|---|---|---|---|"
for n in $SIZES; do
  report "{\"syntheticUsers\": $n, \"pageSize\": $PAGE}"
  SWEEP_REQUESTS_PER_10S=10000 "$BIN" sweep --out "$WORK/run-$n" >"$WORK/out-$n.json"
  echo "| $(field "$WORK/out-$n.json" "d['totals']['users']") | $(field "$WORK/out-$n.json" "d['pages']") | $(field "$WORK/out-$n.json" "d['thisInvocation']['elapsedSeconds']") | $(field "$WORK/out-$n.json" "int(d['thisInvocation']['usersPerSecond'])") | $(field "$WORK/out-$n.json" "round(d['thisInvocation']['peakRssKiB']/1024,1)") |"
done

echo
echo "Throttled: $THROTTLED_USERS users, pages of $PAGE, the simulator allowing 5 requests per 10 s"
report "{\"syntheticUsers\": $THROTTLED_USERS, \"pageSize\": $PAGE, \"throttle\": {\"limit\": 5, \"windowSeconds\": 10}}"
SWEEP_REQUESTS_PER_10S=5 "$BIN" sweep --out "$WORK/throttled" >"$WORK/throttled.json"
python3 - "$WORK/throttled.json" "$PORT" <<'PY'
import json, sys, urllib.request
d = json.load(open(sys.argv[1]))
pages, took = d["pages"], d["thisInvocation"]["elapsedSeconds"]
minimum = max(0, pages - 5) * 2.0
log = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[2]}/sim/requests"))
throttled = sum(1 for r in log["value"] if r["status"] == 429)
print(f"pages {pages}, took {took:.1f} s, minimum {minimum:.1f} s, ratio {took/minimum:.3f} ({(took/minimum-1)*100:.1f}% over), 429 answers: {throttled}")
PY
