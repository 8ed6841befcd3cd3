#!/usr/bin/env bash
# `clew store verify|stats`: runs an embedded server, sends traces, stops it (the shutdown
# cuts the head into a block), then checks what stats counts, that verify passes on sound
# files, fails with exit 1 and names the block once a block is damaged, and the usage errors.
set -euo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
command -v python3 >/dev/null 2>&1 || {
    echo "FAIL: python3 not found" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

CLEW_WORK="$work" timeout 60 python3 - <<'EOF2'
import json, os, signal, socket, subprocess, sys, time, urllib.request

clew = os.environ["CLEW_BIN"]
work = os.environ["CLEW_WORK"]

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

otlp, http = free_port(), free_port()
log = open(os.path.join(work, "server.log"), "ab")
srv = subprocess.Popen([clew, "serve", "--storage", "embedded", "--data-dir",
                        os.path.join(work, "data"), "--otlp-http", "127.0.0.1:%d" % otlp,
                        "--http", "127.0.0.1:%d" % http, "--zipkin", "off", "--otlp-grpc", "off"],
                       stdout=log, stderr=log)
for _ in range(200):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % http, timeout=1) as r:
            if r.status == 200:
                break
    except Exception:
        time.sleep(0.05)
now = time.time_ns()
for n in range(10):
    spans = [{"traceId": "%032x" % (0xabc000 + n), "spanId": "%016x" % (n * 10 + i + 1),
              "name": "op", "kind": 2, "startTimeUnixNano": str(now + i),
              "endTimeUnixNano": str(now + 1000 + i)} for i in range(4)]
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "cmd-svc"}}]},
        "scopeSpans": [{"scope": {"name": "t", "version": "1"}, "spans": spans}]}]}
    req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % otlp,
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
srv.send_signal(signal.SIGTERM)
srv.wait(timeout=20)
EOF2

data="$work/data"
out=$("$CLEW_BIN" store stats --data-dir "$data") || fail "stats exit $?"
echo "$out"
grep -q '^spans: *40 (40 in blocks' <<<"$out" || fail "stats: want 40 spans in blocks"
grep -q '^traces: *10 in blocks' <<<"$out" || fail "stats: want 10 traces"
grep -q '^blocks: *1$' <<<"$out" || fail "stats: want 1 block"

out=$("$CLEW_BIN" store verify --data-dir "$data") || fail "verify of sound files: exit $?"
grep -q 'no damage' <<<"$out" || fail "verify: want 'no damage', got: $out"

block=$(ls "$data"/blocks/*.block | head -1)
size=$(stat -c %s "$block")
printf 'ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ' | dd of="$block" bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
set +e
out=$("$CLEW_BIN" store verify --data-dir "$data")
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "verify of a damaged block: exit $rc, want 1"
grep -q "block $(basename "$block"): DAMAGED" <<<"$out" || fail "verify does not name the block: $out"

set +e
"$CLEW_BIN" store frobnicate --data-dir "$data" >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown subcommand: want exit 2"
"$CLEW_BIN" store verify >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing --data-dir: want exit 2"
"$CLEW_BIN" store stats --data-dir "$work/nope" >/dev/null 2>&1
[ $? -eq 3 ] || fail "missing directory: want exit 3"
set -e
"$CLEW_BIN" store --help | grep -q 'clew store verify' || fail "--help"

if [ "$fails" -gt 0 ]; then
    echo "$fails failed"
    exit 1
fi
echo "all passed"
