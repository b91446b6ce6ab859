#!/usr/bin/env bash
# Graph calls and wall time of one pass (attested verification, by SMS) with every simulated answer
# delayed by LAT ms (default 50), run by hand: `benches/tap_graph_calls.sh [path/to/mfa-recovery] [LAT]`
# (default: the release build). Issue "A recovery in four round trips" will hold it to a target.
# It types the verification block, so a build whose `dev` runs the templates' posture runs with
# `--relaxed` (the same guardrails the earlier measurements had).
set -euo pipefail
BIN=${1:-}; LAT=${2:-50}
if [ -z "$BIN" ]; then (cd "$(dirname "$0")/.." && cargo build --release --quiet --bin mfa-recovery); BIN="$(cd "$(dirname "$0")/.." && pwd)/target/release/mfa-recovery"; fi; P=7581; S=7582
W=$(mktemp -d); cd "$W"
DEV_ARGS=(); "$BIN" dev --help | grep -q -- --relaxed && DEV_ARGS=(--relaxed)
AUDIT_DIR=$W/a REQUESTS_DIR=$W/r SWEEP_DIR=$W/s "$BIN" dev "${DEV_ARGS[@]}" --port $P --sim-port $S > out.txt 2>&1 &
PID=$!; trap 'kill $PID 2>/dev/null; rm -rf "$W"' EXIT
for i in $(seq 1 100); do grep -q "export TOKEN=" out.txt && break; sleep 0.2; done
TOKEN=$(grep -o 'export TOKEN=[^ ]*' out.txt | head -1 | cut -d= -f2)
sleep 1
curl -s -X POST http://127.0.0.1:$S/sim/faults -H 'Content-Type: application/json' -d "{\"route\":\"/**\",\"latencyMs\":$LAT,\"count\":100000}" >/dev/null
run() {
  curl -s -X DELETE http://127.0.0.1:$S/sim/requests >/dev/null
  local t0=$(date +%s%N)
  curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:$P/api/users/$1/tap -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"delivery\":{\"channel\":\"sms\"},\"ticket\":{\"system\":\"jira\",\"id\":\"HELP-1\"},\"reason\":\"lost phone\",\"verification\":{\"method\":\"callback\",\"verifiedBy\":\"agent@contoso.test\",\"verifiedAt\":\"$(date -u +%FT%TZ)\"}}"
  local t1=$(date +%s%N)
  local n=$(curl -s http://127.0.0.1:$S/sim/requests | python3 -c 'import json,sys; v=json.load(sys.stdin)["value"]; print(len([r for r in v if r["path"].startswith(("/v1.0","/beta"))]))')
  echo " $1: ${n} Graph calls, $(( (t1-t0)/1000000 )) ms at ${LAT} ms per call"
}
run adele.vance@contoso.test
run lee.gu@contoso.test
