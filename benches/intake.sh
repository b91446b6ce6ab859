#!/usr/bin/env bash
# The intake under concurrent callers (issue "An intake without a hot spot"), by hand:
# `benches/intake.sh [BIN...]` (default: a release build of this tree).
#
# For each binary: `mfa-recovery dev` on the local store (REQUESTS_DIR), then for 1, 10 and 50
# concurrent callers, each caller submits PER requests one after another (`POST /api/requests`,
# a pass for a user the tenant does not have, so the worker behind the intake has little to do:
# one Graph read, a refusal; `dev --relaxed`, so a typed verification is taken). Prints the median and the 99th percentile of the intake's answer
# time and the requests per second, the answers that were not 202, and how busy the machine's cores
# were during the burst (from /proc/stat: every process, the callers' too).
#
# STORE_DELAY_MS=5 runs the same with the local stores 5 ms away (`dev --store-delay-ms`): every
# record, audit, rate-limit and queue operation waits that long first, as a storage account's round
# trip would, so the callers' requests wait on storage side by side (or, with a document every
# request rewrites, one after another). A build from before that flag takes it with
# benches/store-delay-before.patch applied (made for 2725ec5, the last commit before the issue).
# Results: benches/intake.last.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

PER=${PER:-40}
APP_PORT=${APP_PORT:-7581}
SIM_PORT=${SIM_PORT:-7582}

if [ $# -eq 0 ]; then
  cargo build --release --quiet --bin mfa-recovery
  set -- target/release/mfa-recovery
fi
WORK=$(mktemp -d)
APP=""
trap '[ -n "$APP" ] && kill $APP 2>/dev/null; rm -rf "$WORK"' EXIT

DELAY=()
[ "${STORE_DELAY_MS:-0}" != 0 ] && DELAY=(--store-delay-ms "$STORE_DELAY_MS")
echo "benches/intake.sh, $(nproc) cores, $(date -u +%F), $PER requests per caller, local stores ${STORE_DELAY_MS:-0} ms away"
echo
echo "| build | callers | requests | p50 (ms) | p99 (ms) | requests/s | not 202 | cores busy |"
echo "|---|---|---|---|---|---|---|---|"
for bin in "$@"; do
  label=$(basename "$(dirname "$bin")")
  for callers in 1 10 50; do
    run="$WORK/$label-$callers"
    AUDIT_DIR="$run/audit" REQUESTS_DIR="$run/requests" SWEEP_DIR="$run/sweeps" RUST_LOG=error \
      "$bin" dev --relaxed "${DELAY[@]}" --port "$APP_PORT" --sim-port "$SIM_PORT" >"$run.log" 2>&1 &
    APP=$!
    for _ in $(seq 300); do curl -sf "http://127.0.0.1:$APP_PORT/api/health" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$APP_PORT/api/health" >/dev/null || { cat "$run.log"; exit 1; }
    python3 - "$APP_PORT" "$SIM_PORT" "$callers" "$PER" "$label" <<'PY'
import json, sys, time, urllib.request, urllib.error, datetime, statistics, threading
from concurrent.futures import ThreadPoolExecutor
app, sim, callers, per, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def call(method, url, body=None, token=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method,
                                 headers={"content-type": "application/json"})
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, json.load(r)
_, tok = call("POST", f"http://127.0.0.1:{sim}/sim/token", {"roles": ["Recovery.Request"], "expiresIn": 28800})
token = tok["accessToken"] if "accessToken" in tok else tok["access_token"]
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
def body(c, i):
    return {"action": "tap", "user": f"nobody.{c}.{i}@contoso.test", "delivery": {"channel": "email"},
            "ticket": {"system": "servicenow", "id": f"INC{c:03d}{i:04d}"}, "reason": "lost phone",
            "verification": {"method": "video call", "verifiedBy": "agent@contoso.test", "verifiedAt": now}}
# Warm-up: one request.
call("POST", f"http://127.0.0.1:{app}/api/requests", body(999, 0), token)
times, refused, lock = [], [], threading.Lock()
def caller(c):
    for i in range(per):
        t = time.perf_counter()
        try:
            status, answer = call("POST", f"http://127.0.0.1:{app}/api/requests", body(c, i), token)
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()[:200]
        ms = (time.perf_counter() - t) * 1000
        with lock:
            # The figures are of accepted requests; any other answer is counted apart.
            if status == 202:
                times.append(ms)
            else:
                refused.append((status, answer))
def cpu():
    # The machine's CPU time (every process): all of it, and the part that was idle.
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4]
before = cpu()
start = time.perf_counter()
with ThreadPoolExecutor(callers) as pool:
    list(pool.map(caller, range(callers)))
wall = time.perf_counter() - start
after = cpu()
busy = 1 - (after[1] - before[1]) / max(1, after[0] - before[0])
times.sort()
p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
print(f"| {label} | {callers} | {len(times) + len(refused)} | {statistics.median(times):.1f} | {p(0.99):.1f} | {len(times) / wall:.0f} | {len(refused)} | {busy:.0%} |")
if refused:
    print(f"first answer that was not 202: {refused[0]}", file=sys.stderr)
PY
    kill $APP 2>/dev/null; wait $APP 2>/dev/null || true; APP=""
  done
done
