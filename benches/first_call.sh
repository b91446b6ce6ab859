#!/usr/bin/env bash
# The first call after a cold start (issue "An intake without a hot spot, and a 5 ms cold start":
# "without moving the cost onto the first recovery"), by hand: `benches/first_call.sh [BIN...]`
# (default: a release build of this tree).
#
# Each binary is started as `serve` with the variables the platform sets (as `cargo xtask
# cold-start`), its storage and Key Vault at a local HTTPS server and its managed identity at a
# local token endpoint, trusting the machine's whole root store plus a test CA (SSL_CERT_FILE and
# SSL_CERT_DIR: the same files to load as the platform's, one more). As soon as it answers `GET /`
# (the host's readiness probe), it gets the host's queue invocation of `recovery-worker` for a
# request storage does not have: a token, then HTTPS to storage (a TLS handshake, its certificate
# verified against the roots), then the answer. Then the same invocation again. Printed: the
# median start (exec to the first answer), first invocation and second invocation, RUNS starts
# each (default 30), the binaries taking turns. The first invocation also fetches the identity's
# token and opens the TCP and TLS connection that the second reuses (a new connection is about
# 0.7 ms here); what it takes beyond that is what a recovery arriving at once pays for the start:
# the roots' load, and, before aws-lc was built without it, the CPU jitter entropy.
# Results: benches/first_call.last.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  cargo build --release --quiet --bin mfa-recovery
  set -- target/release/mfa-recovery
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(
  cd "$WORK"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=bench CA" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > leaf.ext
  openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext 2>/dev/null
  mkdir certs
  cp -L /etc/ssl/certs/*.pem certs/ && cp ca.pem certs/bench-ca.pem && openssl rehash certs 2>/dev/null
  cat /etc/ssl/certs/ca-certificates.crt ca.pem > bundle.crt
)
echo "benches/first_call.sh, $(nproc) cores, $(date -u +%F), roots: $(ls "$WORK/certs"/*.pem | wc -l) files and a bundle"
echo
python3 - "$WORK" "${RUNS:-30}" "$@" <<'PY'
import http.server, json, os, socket, ssl, statistics, subprocess, sys, threading, time
work, runs, binaries = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # the head and the body in one write (no Nagle wait on a delayed ACK)
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def log_message(self, *a): pass
    def answer(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        for k, v in headers: self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

class Identity(Quiet):
    # App Service's managed identity endpoint (../shared/fixtures/functions/identity-token.response.json).
    def do_GET(self):
        self.answer(200, json.dumps({"access_token": "eyJ0eXAi.bench.token", "expires_on": str(int(time.time()) + 3600),
                                     "resource": "https://storage.azure.com", "token_type": "Bearer",
                                     "client_id": "5e29463d-71da-4fe0-8e69-999b57db23b0"}), [("content-type", "application/json")])

class Storage(Quiet):
    # Every blob is missing (Get Blob: 404 BlobNotFound); anything else is accepted.
    def reply(self):
        n = int(self.headers.get("content-length") or 0)
        if n: self.rfile.read(n)
        if self.command == "GET":
            self.answer(404, '<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.</Message></Error>',
                        [("x-ms-error-code", "BlobNotFound"), ("content-type", "application/xml")])
        else:
            self.answer(201, "", [("etag", '"0x1"'), ("last-modified", "Mon, 07 Dec 2026 10:00:00 GMT")])
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = reply

def serve(handler, tls):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # Accepted connections inherit it: the TLS handshake's flights go out without a Nagle wait.
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{work}/leaf.pem", f"{work}/leaf.key")
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]

identity, storage = serve(Identity, False), serve(Storage, True)
# The host's queue invocation (tests/api/helpers.rs, host_queue_envelope): the message's text as
# a JSON string, as the host sends it.
envelope = json.dumps({"Data": {"message": json.dumps(json.dumps({"requestId": "7d3c2b1a-0000-4000-8000-000000000001"}))},
                       "Metadata": {"DequeueCount": "1", "Id": "\"a0004923-f050-417a-9742-6d7c7b984134\"",
                                    "sys": {"MethodName": "recovery-worker", "UtcNow": "2026-12-07T06:00:18.1974545Z", "RandGuid": "d9ba2785-ee1a-4260-a83b-f57cb54b969e"}}})

def http_call(port, method, path, body=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
    s.close()
    return int(data.split(b" ", 2)[1]), data

def start(binary):
    probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
    here = f"https://127.0.0.1:{storage}/"
    env = {"FUNCTIONS_CUSTOMHANDLER_PORT": str(port), "FUNCTIONS_CUSTOMHANDLER_WORKER_ID": "2d1c6c55-worker",
           "WEBSITE_SITE_NAME": "func-mfa-recovery", "IDENTITY_ENDPOINT": f"http://127.0.0.1:{identity}/msi/token",
           "IDENTITY_HEADER": "0c1f6b8e-header", "AzureWebJobsStorage__blobServiceUri": here,
           "AzureWebJobsStorage__queueServiceUri": here, "AzureWebJobsStorage__credential": "managedidentity",
           "AzureWebJobsStorage__clientId": "5e29463d-71da-4fe0-8e69-999b57db23b0", "AZURE_CLIENT_ID": "5e29463d-71da-4fe0-8e69-999b57db23b0",
           "AUTH_TENANT_ID": "8f0c2c1e-3b7a-4c57-9a3e-5b2f6d1c9e10", "AUTH_AUDIENCE": "0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31",
           "KEY_VAULT_URI": here, "AUDIT_CONTAINER": "audit", "REQUESTS_CONTAINER": "recovery-requests", "SWEEP_CONTAINER": "sweeps",
           "SWEEP_SCHEDULE": "0 0 2 * * *", "EMAIL_PROVIDER": "graph", "MAIL_SENDER": "mfa-recovery@contoso.com",
           "TAP_REQUIRE_VERIFICATION": "true", "NOTICE_CONTACT": "the service desk",
           "SSL_CERT_FILE": f"{work}/bundle.crt", "SSL_CERT_DIR": f"{work}/certs", "RUST_LOG": "error"}
    began = time.perf_counter()
    child = subprocess.Popen([binary, "serve"] if "serve" not in binary else [binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while True:
        try:
            status, _ = http_call(port, "GET", "/")
            if status == 200: break
        except OSError:
            pass
        if child.poll() is not None or time.perf_counter() - began > 10:
            child.kill()
            raise SystemExit(f"{binary} did not start: {child.stderr.read().decode()[-2000:]}")
        time.sleep(0.0002)
    ready = time.perf_counter()
    timings = [ready - began]
    try:
        for _ in range(2):
            t = time.perf_counter()
            status, answer = http_call(port, "POST", "/recovery-worker", envelope.encode())
            timings.append(time.perf_counter() - t)
            if status != 200:
                raise SystemExit(f"{binary}: recovery-worker answered {status}: {answer[-600:]}")
    finally:
        child.kill(); child.wait()
    return timings

results = {b: [] for b in binaries}
for _ in range(runs):
    for b in binaries:
        results[b].append(start(b))
print("| binary | starts | start, median (ms) | first invocation, median (ms) | second invocation, median (ms) | first minus second, median (ms) |")
print("|---|---|---|---|---|---|")
for b, rows in results.items():
    med = lambda i: statistics.median(r[i] for r in rows) * 1000
    extra = statistics.median((r[1] - r[2]) for r in rows) * 1000
    print(f"| {b} | {len(rows)} | {med(0):.2f} | {med(1):.2f} | {med(2):.2f} | {extra:.2f} |")
PY
