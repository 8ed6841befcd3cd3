#!/usr/bin/env bash
# The embedded store's crash contract: a span acknowledged with 200 survives kill -9.
# Starts `clew serve --storage embedded`, sends batches with unique trace ids (OTLP/JSON) from
# two client threads, kills the server with SIGKILL at random moments (4 times in ~15 s) and
# restarts it on the same data dir, then checks through /api/v3/traces/{id} that every
# acknowledged span is present and identical to what was sent.
set -euo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
command -v python3 >/dev/null 2>&1 || {
    echo "FAIL: python3 not found" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# everything (server restarts included) is driven from one python program so that the
# kill moments and the bookkeeping of acknowledged batches share one clock
CLEW_WORK="$work" timeout 90 python3 - <<'EOF'
import json, os, random, signal, socket, subprocess, sys, threading, time
import urllib.request, urllib.error

clew = os.environ["CLEW_BIN"]
work = os.environ["CLEW_WORK"]
data_dir = os.path.join(work, "data")
KILLS = 4
rng = random.Random(int(time.time()))

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

otlp_port, http_port = free_port(), free_port()
log = open(os.path.join(work, "server.log"), "ab")
server = None

def start():
    global server
    for _ in range(50):
        server = subprocess.Popen(
            [clew, "serve", "--storage", "embedded", "--data-dir", data_dir,
             "--otlp-http", "127.0.0.1:%d" % otlp_port, "--http", "127.0.0.1:%d" % http_port,
             "--zipkin", "off", "--otlp-grpc", "off", "--fsync", "interval",
             "--block-duration", "1s", "--retention", "87600h",
             "--shutdown-timeout", "1s"],
            stdout=log, stderr=log)
        for _ in range(200):
            if server.poll() is not None:
                break
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % http_port,
                                            timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.05)
        # the port may still be held by the killed process for a moment: retry
        if server.poll() is None:
            server.kill()
        server.wait()
        time.sleep(0.2)
    print("FAIL: clew serve did not start; log:", file=sys.stderr)
    sys.stderr.write(open(os.path.join(work, "server.log")).read()[-4000:])
    sys.exit(1)

def make_batch(n):
    """One trace of 3 spans with every attribute type; ids are unique per n."""
    tid = "%016x%016x" % (0xC1E7 << 32 | os.getpid(), n)
    t0 = 1700000000000000000 + n * 1000
    spans = []
    for i in range(3):
        spans.append({
            "traceId": tid,
            "spanId": "%08x%08x" % (n & 0xffffffff, i + 1),
            "parentSpanId": "" if i == 0 else "%08x%08x" % (n & 0xffffffff, 1),
            "name": "op-%d" % i,
            "kind": 2 + (i % 2),
            "startTimeUnixNano": str(t0 + i),
            "endTimeUnixNano": str(t0 + 500 + i),
            "attributes": [
                {"key": "s", "value": {"stringValue": "v%d-%d" % (n, i)}},
                {"key": "i", "value": {"intValue": str(-n * 10 - i)}},
                {"key": "d", "value": {"doubleValue": 0.5 + i}},
                {"key": "b", "value": {"boolValue": i % 2 == 0}},
                {"key": "a", "value": {"arrayValue": {"values": [
                    {"stringValue": "x"}, {"intValue": str(n)}]}}},
            ],
            "status": {"code": 2 if i == 2 else 0},
        })
    return tid, {"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "crash-svc"}}]},
        "scopeSpans": [{"scope": {"name": "crash-test"}, "spans": spans}]}]}

lock = threading.Lock()
acked = {}  # trace id -> sent batch
stop = threading.Event()
counter = [0]

def sender(k):
    while not stop.is_set():
        with lock:
            counter[0] += 1
            n = counter[0]
        tid, body = make_batch(n)
        req = urllib.request.Request(
            "http://127.0.0.1:%d/v1/traces" % otlp_port, data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=3) as r:
                if r.status == 200:
                    with lock:
                        acked[tid] = body
        except Exception:
            time.sleep(0.02)  # server down or refusing: not acknowledged

start()
threads = [threading.Thread(target=sender, args=(k,)) for k in range(2)]
for t in threads:
    t.start()
kills = 0
for _ in range(KILLS):
    time.sleep(rng.uniform(1.5, 4.0))
    server.send_signal(signal.SIGKILL)
    server.wait()
    kills += 1
    time.sleep(rng.uniform(0.0, 0.3))
    start()
time.sleep(1.0)
stop.set()
for t in threads:
    t.join()
# a last kill after the senders stopped, then a clean restart for the checks
server.send_signal(signal.SIGKILL)
server.wait()
kills += 1
start()

def canon_value(v):
    if "stringValue" in v:
        return ("s", v["stringValue"])
    if "intValue" in v:
        return ("i", int(v["intValue"]))
    if "doubleValue" in v:
        return ("d", float(v["doubleValue"]))
    if "boolValue" in v:
        return ("b", bool(v["boolValue"]))
    if "arrayValue" in v:
        return ("a", tuple(canon_value(x) for x in v["arrayValue"].get("values", [])))
    return ("?", json.dumps(v, sort_keys=True))

def canon_span(s, svc):
    return (s["spanId"].lower(), s.get("parentSpanId", "").lower(), s["name"], int(s.get("kind", 0)),
            int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"]),
            tuple(sorted((a["key"], canon_value(a["value"])) for a in s.get("attributes", []))),
            int(s.get("status", {}).get("code", 0)), svc)

def canon_batch(b):
    out = []
    for rs in b.get("resourceSpans", []):
        svc = None
        for a in rs.get("resource", {}).get("attributes", []):
            if a["key"] == "service.name":
                svc = a["value"].get("stringValue")
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                out.append(canon_span(s, svc))
    return sorted(out)

passed = failed = 0
spans_checked = 0
for tid, body in sorted(acked.items()):
    want = canon_batch(body)
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v3/traces/%s" % (http_port, tid),
                                    timeout=5) as r:
            got = canon_batch(json.loads(r.read())["result"])
    except urllib.error.HTTPError as e:
        got = "HTTP %d" % e.code
    spans_checked += len(want)
    if got == want:
        passed += 1
    else:
        failed += 1
        if failed <= 5:
            print("acknowledged trace %s differs or is missing after the crashes:\n  want %r\n  got  %r"
                  % (tid, want, got), file=sys.stderr)

server.send_signal(signal.SIGTERM)
try:
    server.wait(timeout=10)
except subprocess.TimeoutExpired:
    server.kill()
    print("FAIL: clew serve did not stop on SIGTERM", file=sys.stderr)
    failed += 1
print("%d kills, %d sent, %d acknowledged traces, %d spans checked" %
      (kills, counter[0], len(acked), spans_checked))
print("%d passed, %d failed" % (passed, failed))
if len(acked) < 20:
    print("FAIL: too few acknowledged batches (%d) for the test to mean anything" % len(acked),
          file=sys.stderr)
    sys.exit(1)
replays = open(os.path.join(work, "server.log")).read().count("replayed the WAL")
if replays < kills + 1:
    print("FAIL: expected %d WAL replays in the log, saw %d" % (kills + 1, replays), file=sys.stderr)
    sys.exit(1)
# the head was cut into blocks during the kills (--block-duration 1s): the checks above
# read across blocks and the head, and every block must verify
cuts = open(os.path.join(work, "server.log")).read().count("cut: ")
if cuts < 1:
    print("FAIL: no head cut in the log", file=sys.stderr)
    sys.exit(1)
v = subprocess.run([clew, "store", "verify", "--data-dir", data_dir], capture_output=True,
                   text=True)
if v.returncode != 0:
    print("FAIL: clew store verify exit %d:\n%s" % (v.returncode, v.stdout), file=sys.stderr)
    sys.exit(1)
print("%d cuts; clew store verify: %s" % (cuts, v.stdout.strip().splitlines()[-1]))
sys.exit(1 if failed else 0)
EOF
