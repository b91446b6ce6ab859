#!/usr/bin/env bash
# What each recovery costs in Microsoft Graph with Graph far away (issue "A recovery in four round
# trips"), by hand: `benches/recovery_cost.sh AFTER [BEFORE] [LAT]` with two `mfa-recovery`
# binaries (default: target/debug/mfa-recovery, no baseline, LAT=50 ms on every Graph answer).
#
# For each binary, `mfa-recovery dev` on its simulated tenant; one pass on another user first (a
# warm process: this API's objects found, the TAP policy read); then, each alone: a pass by SMS,
# a verification code by email, the console's look-up, a reset with a pass by email. It prints
# the Graph calls (a `$batch` counted by its parts), the wall time, and the round trips one
# after another: what the simulator counted (GET /sim/cost) where it can, and wall / LAT.
# A binary whose simulator has POST /sim/scale is also run in bigger tenants (role-assignable
# groups 50 and 500, the user in 30 more groups, 5,000 holders of this API's roles).
# Results: benches/recovery_cost.last.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AFTER=${1:-$ROOT/target/debug/mfa-recovery}; BEFORE=${2:-}; LAT=${3:-50}
P=7681; S=7682

start() { # $1 binary; leaves PID, TOKEN, W
  W=$(mktemp -d)
  local args=(); "$1" dev --help | grep -q -- --relaxed && args=(--relaxed)
  (cd "$W" && AUDIT_DIR=$W/a REQUESTS_DIR=$W/r SWEEP_DIR=$W/s exec "$1" dev "${args[@]}" --port $P --sim-port $S > "$W/out.txt" 2>&1) &
  PID=$!
  for _ in $(seq 1 600); do grep -q "export TOKEN=" "$W/out.txt" 2>/dev/null && break; sleep 0.2; done
  TOKEN=$(grep -o 'export TOKEN=[^ ]*' "$W/out.txt" | head -1 | cut -d= -f2)
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; rm -rf "$W"; sleep 0.5; }
sim() { curl -s -o /dev/null -w '%{http_code}' -X "$1" "http://127.0.0.1:$S$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
far() { # Graph LAT ms away: the simulator's latency, or (older simulators) a latency fault
  if [ "$(sim POST /sim/latency "{\"graphMs\":$1}")" != 200 ]; then
    sim POST /sim/faults "{\"route\":\"/v1.0/**\",\"latencyMs\":$1,\"count\":1000000}" >/dev/null
    sim POST /sim/faults "{\"route\":\"/beta/**\",\"latencyMs\":$1,\"count\":1000000}" >/dev/null
  fi
}
verified() { echo "{\"method\":\"callback\",\"verifiedBy\":\"agent@contoso.test\",\"verifiedAt\":\"$(date -u +%FT%TZ)\"}"; }
call() { # $1 method $2 path $3 body
  curl -s -o /dev/null -w '%{http_code}' -X "$1" "http://127.0.0.1:$P$2" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
op() { # $1 name; prints one row
  local user=lee.gu@contoso.test body path method=POST
  case $1 in
    tap) path=/api/users/$user/tap; body="{\"delivery\":{\"channel\":\"sms\"},\"ticket\":{\"system\":\"jira\",\"id\":\"HELP-1\"},\"reason\":\"lost phone\",\"verification\":$(verified)}" ;;
    verification) path=/api/users/$user/verifications; body='{"channel":"email"}' ;;
    look-up) path=/api/users/$user; method=GET; body= ;;
    reset) path=/api/users/$user/mfa/reset; body="{\"ticket\":{\"system\":\"jira\",\"id\":\"HELP-2\"},\"reason\":\"lost phone\",\"verification\":$(verified),\"tap\":{\"delivery\":{\"channel\":\"email\"}}}" ;;
  esac
  sim DELETE /sim/requests >/dev/null
  local t0 t1 status
  t0=$(date +%s%N); status=$(call $method "$path" "$body"); t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  local calls rts cost
  # At once, before anything sent after the answer (the outbox's notices, LAT ms away) is answered.
  if cost=$(curl -s -f "http://127.0.0.1:$S/sim/cost" 2>/dev/null); then
    calls=$(echo "$cost" | python3 -c 'import json,sys; print(json.load(sys.stdin)["calls"])')
    rts=$(echo "$cost" | python3 -c 'import json,sys; print(json.load(sys.stdin)["roundTrips"])')
  else
    calls=$(curl -s "http://127.0.0.1:$S/sim/requests" | python3 -c 'import json,sys; v=json.load(sys.stdin)["value"]; print(len([r for r in v if r["path"].startswith(("/v1.0/","/beta/")) and not r["path"].endswith("/$batch")]))')
    rts="-"
  fi
  printf '| %s | %s | %s | %s | %s | %s | %d ms | %.1f |\n' "$2" "$3" "$1" "$status" "$calls" "$rts" "$ms" "$(echo "$ms / $LAT" | bc -l)"
}
measure() { # $1 binary $2 label $3 tenant label $4 scale JSON or ""
  start "$1"
  [ -n "$4" ] && sim POST /sim/scale "$4" >/dev/null
  call POST /api/users/adele.vance@contoso.test/tap "{\"delivery\":{\"channel\":\"email\"},\"ticket\":{\"system\":\"jira\",\"id\":\"HELP-0\"},\"reason\":\"warm-up\",\"verification\":$(verified)}" >/dev/null
  far "$LAT"
  local ops=(tap verification look-up reset)
  [ -n "$4" ] && ops=(tap)
  # A second between operations: the outbox sends the last one's notices before the next begins.
  for o in "${ops[@]}"; do op "$o" "$2" "$3"; sleep 1; done
  stop
}

echo "benches/recovery_cost.sh, every Graph answer $LAT ms away, $(nproc) cores, $(date -u +%F)"
echo
echo "| build | tenant | operation | status | Graph calls | round trips (counted) | wall | wall / $LAT ms |"
echo "|---|---|---|---|---|---|---|---|"
[ -n "$BEFORE" ] && measure "$BEFORE" before "demo" ""
measure "$AFTER" after "demo" ""
start "$AFTER"; scalable=$(sim POST /sim/scale '{}'); stop
if [ "$scalable" = 204 ]; then
  measure "$AFTER" after "50 role-assignable groups" '{"roleAssignableGroups":50}'
  measure "$AFTER" after "500 role-assignable groups" '{"roleAssignableGroups":500}'
  measure "$AFTER" after "user in 30 more groups" '{"groupsOf":["lee.gu@contoso.test",30]}'
  measure "$AFTER" after "5,000 API role holders" '{"apiRoleHolders":5000}'
fi
