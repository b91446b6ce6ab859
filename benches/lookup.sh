#!/usr/bin/env bash
# Benchmark of the console's look-up, `GET /api/users/{user}` (issue "The helpdesk console"), run
# by hand: `benches/lookup.sh`.
#
# A look-up reads the user, their memberships, the privilege sources, the pass policy, the
# methods, each channel's address (and the directory audit log for each), and the user's open
# requests from the intake's index, which reads every request it names. So it is measured against
# the number of requests waiting for an approver: 0, and WAITING (default 50) held passes.
#
# For each size: `mfa-recovery dev` (release build) with approvals on, that many passes for Allan
# (an eligible Global Administrator, so each is held), then LOOKUPS sequential look-ups of Adele
# (10 of them warm-up), timed from a client on the same machine. Prints the median and the 90th
# percentile. BIN=path/to/mfa-recovery measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."

WAITING=${WAITING:-50}
LOOKUPS=${LOOKUPS:-60}
APP_PORT=${APP_PORT:-7481}
SIM_PORT=${SIM_PORT:-7482}

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin mfa-recovery
  BIN=target/release/mfa-recovery
fi
WORK=$(mktemp -d)
APP=""
trap '[ -n "$APP" ] && kill $APP 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

echo "| requests waiting | look-ups | median (ms) | p90 (ms) |"
echo "|---|---|---|---|"
for n in 0 "$WAITING"; do
  AUDIT_DIR="$WORK/audit-$n" REQUESTS_DIR="$WORK/requests-$n" SWEEP_DIR="$WORK/sweeps-$n" \
    APPROVAL_NOTIFY_GROUP=a1b2c3d4-0001-4000-8000-000000000001 \
    TAP_MAX_PER_CALLER_PER_HOUR=10000 USER_LOOKUPS_PER_CALLER_PER_HOUR=100000 RUST_LOG=error \
    "$BIN" dev --port "$APP_PORT" --sim-port "$SIM_PORT" >"$WORK/dev-$n.log" 2>&1 &
  APP=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$APP_PORT/api/health" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$APP_PORT/api/health" >/dev/null || { cat "$WORK/dev-$n.log"; exit 1; }
  python3 - "$APP_PORT" "$SIM_PORT" "$LOOKUPS" "$n" <<'PY'
import json, sys, time, urllib.request, datetime, statistics
app, sim, lookups, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def call(method, url, body=None, token=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method,
                                 headers={"content-type": "application/json"})
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as r:
        return r.status, json.load(r)
_, tok = call("POST", f"http://127.0.0.1:{sim}/sim/token", {"roles": ["Recovery.Tap"], "expiresIn": 28800})
token = tok["accessToken"] if "accessToken" in tok else tok["access_token"]
for i in range(n):
    body = {"delivery": {"channel": "email"}, "ticket": {"system": "servicenow", "id": f"INC9{i:06d}"},
            "reason": "lost phone", "verification": {"method": "manager callback", "verifiedBy": "agent@contoso.test",
            "verifiedAt": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    status, _ = call("POST", f"http://127.0.0.1:{app}/api/users/allan.deyoung@contoso.test/tap", body, token)
    assert status == 202, status
times = []
for i in range(lookups):
    t = time.perf_counter()
    status, summary = call("GET", f"http://127.0.0.1:{app}/api/users/adele.vance@contoso.test", token=token)
    times.append((time.perf_counter() - t) * 1000)
    assert status == 200, status
timed = sorted(times[10:])
p90 = timed[int(len(timed) * 0.9) - 1]
print(f"| {n} | {len(timed)} | {statistics.median(timed):.1f} | {p90:.1f} |")
PY
  kill "$APP"; wait "$APP" 2>/dev/null || true; APP=""
done
