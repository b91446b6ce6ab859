#!/usr/bin/env bash
# Benchmark of a pass against the size of the audit trail (issue "Guardrails that hold against a
# real attacker", item 3), run by hand: `benches/tap_trail.sh`.
#
# The rate limits used to be counted by reading the day's audit trail before every pass, so a
# pass got slower as the trail grew (and a flood of records made every pass slow). They are now
# slots reserved with one conditional read and write, so a pass must take as long against a
# trail of 100,000 records as against an empty one.
#
# For each trail size: `mfa-recovery dev` (release build) with its audit directory filled with
# that many records of today (other users, succeeded passes), then 60 sequential passes by SMS
# for one user (10 of them warm-up), timed from a client on the same machine. Prints the median
# and the 90th percentile. BIN=path/to/mfa-recovery measures another build.
# Target: the 100,000-record median within 10% (or 5 ms) of the empty one.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"0 100000"}
PASSES=${PASSES:-60}
APP_PORT=${APP_PORT:-7471}
SIM_PORT=${SIM_PORT:-7472}

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin mfa-recovery
  BIN=target/release/mfa-recovery
fi
WORK=$(mktemp -d)
APP=""
trap '[ -n "$APP" ] && kill $APP 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

echo "| records in the trail | passes | median (ms) | p90 (ms) |"
echo "|---|---|---|---|"
for n in $SIZES; do
  AUDIT="$WORK/audit-$n"
  python3 - "$AUDIT" "$n" <<'PY'
import json, os, sys, uuid, datetime
root, n = sys.argv[1], int(sys.argv[2])
now = datetime.datetime.now(datetime.timezone.utc)
day = now.strftime("%Y/%m/%d")
os.makedirs(f"{root}/{day}", exist_ok=True)
chain = f"{day}/{uuid.uuid4().hex}"
with open(f"{root}/{chain}.jsonl", "w") as f:
    for i in range(n):
        t = (now - datetime.timedelta(seconds=(n - i) * 0.5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        f.write(json.dumps({
            "id": str(uuid.uuid4()), "time": t, "chain": chain, "seq": i + 1,
            "caller": {"via": "token", "objectId": str(uuid.uuid4())},
            "action": "tap.issue", "target": {"objectId": str(uuid.uuid4()), "upn": f"user{i}@contoso.test"},
            "ticket": {"system": "servicenow", "id": f"INC{i:07d}"},
            "requestId": str(uuid.uuid4()), "phase": "outcome",
            "outcome": {"status": "succeeded"}, "details": {"channel": "sms"},
            "prevHash": "0" * 64, "hash": "0" * 64,
        }) + "\n")
PY
  AUDIT_DIR="$AUDIT" REQUESTS_DIR="$WORK/requests-$n" SWEEP_DIR="$WORK/sweeps-$n" \
    TAP_MAX_PER_TARGET_PER_DAY=100 TAP_MAX_PER_CALLER_PER_HOUR=10000 RUST_LOG=error \
    "$BIN" dev --port "$APP_PORT" --sim-port "$SIM_PORT" >"$WORK/dev-$n.log" 2>&1 &
  APP=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$APP_PORT/api/health" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$APP_PORT/api/health" >/dev/null || { cat "$WORK/dev-$n.log"; exit 1; }
  python3 - "$APP_PORT" "$SIM_PORT" "$PASSES" "$n" <<'PY'
import json, sys, time, urllib.request, datetime, statistics
app, sim, passes, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def post(url, body, token=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as r:
        return r.status, json.load(r)
_, tok = post(f"http://127.0.0.1:{sim}/sim/token", {"roles": ["Recovery.Tap"], "expiresIn": 28800})
token = tok["accessToken"] if "accessToken" in tok else tok["access_token"]
times = []
for i in range(passes):
    body = {"delivery": {"channel": "sms"}, "ticket": {"system": "servicenow", "id": f"INC{i}"},
            "reason": "lost phone", "verification": {"method": "manager callback", "verifiedBy": "agent@contoso.test",
            "verifiedAt": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    t = time.perf_counter()
    status, _ = post(f"http://127.0.0.1:{app}/api/users/adele.vance@contoso.test/tap", body, token)
    times.append((time.perf_counter() - t) * 1000)
    assert status == 201, status
timed = sorted(times[10:])
p90 = timed[int(len(timed) * 0.9) - 1]
print(f"| {int(n):,} | {len(timed)} | {statistics.median(timed):.1f} | {p90:.1f} |")
PY
  kill "$APP"; wait "$APP" 2>/dev/null || true; APP=""
done
