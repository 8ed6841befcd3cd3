#!/usr/bin/env bash
# The embedded store's crash contract: a span acknowledged with 200 survives kill -9.
# Starts `clew serve --storage embedded`, sends batches with unique trace ids (OTLP/JSON) from
# two client threads, kills the server with SIGKILL at random moments (4 times in ~15 s) and
# restarts it on the same data dir, then checks through /api/v3/traces/{id} that every
# acknowledged span is present and identical to what was sent.
#
# Knobs (environment), for the long run `make soak`:
#   CRASH_KILLS    kills while the clients send (default 4; one more follows at the end)
#   CRASH_SECONDS  about how long the kills take in all (default: 1.5-4 s between kills);
#                  the gaps are drawn uniformly from 0.5-1.5 times CRASH_SECONDS / CRASH_KILLS
#   CRASH_TIMEOUT  hard limit for the whole run in seconds (default 90, or a limit derived
#                  from the two above when they are set)
#   CRASH_KEEP     1 = keep the work dir (server log, data dir) and print where it is
set -euo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
command -v python3 >/dev/null 2>&1 || {
    echo "FAIL: python3 not found" >&2
    exit 1
}

kills="${CRASH_KILLS:-4}"
seconds="${CRASH_SECONDS:-0}"
case "$kills$seconds" in
*[!0-9]*)
    echo "FAIL: CRASH_KILLS and CRASH_SECONDS must be whole numbers" >&2
    exit 1
    ;;
esac
if [ "$kills" -lt 1 ]; then
    echo "FAIL: CRASH_KILLS must be at least 1" >&2
    exit 1
fi
limit=90
if [ "${CRASH_KILLS:-}" != "" ] || [ "$seconds" -gt 0 ]; then
    # the kills, a restart (WAL replay) per kill, and the checks at the end
    limit=$((90 + seconds * 2 + kills * 20))
fi
limit="${CRASH_TIMEOUT:-$limit}"

work=$(mktemp -d)
if [ "${CRASH_KEEP:-0}" = 1 ]; then
    trap 'echo "work dir kept: $work"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi

# everything (server restarts included) is driven from one python program so that the
# kill moments and the bookkeeping of acknowledged batches share one clock
CLEW_WORK="$work" CRASH_KILLS="$kills" CRASH_SECONDS="$seconds" timeout "$limit" python3 - <<'EOF'
import json, os, random, signal, socket, subprocess, sys, threading, time
import urllib.request, urllib.error

clew = os.environ["CLEW_BIN"]
work = os.environ["CLEW_WORK"]
data_dir = os.path.join(work, "data")
KILLS = int(os.environ["CRASH_KILLS"])
SECONDS = float(os.environ["CRASH_SECONDS"])
seed = int(time.time())
rng = random.Random(seed)
print("crash test: %d kills, seed %d" % (KILLS, seed), flush=True)

def gap():
    if SECONDS <= 0:
        return rng.uniform(1.5, 4.0)
    mean = SECONDS / KILLS
    return rng.uniform(0.5 * mean, 1.5 * mean)

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
acked = {}  # trace id -> n of make_batch(n), the batch sent
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
                        acked[tid] = n  # make_batch(n) rebuilds the body for the check
        except Exception:
            time.sleep(0.02)  # server down or refusing: not acknowledged

start()
threads = [threading.Thread(target=sender, args=(k,)) for k in range(2)]
for t in threads:
    t.start()
kills = 0
t_start = time.time()
for _ in range(KILLS):
    time.sleep(gap())
    server.send_signal(signal.SIGKILL)
    server.wait()
    kills += 1
    if KILLS > 10 and kills % 10 == 0:
        with lock:
            n_acked = len(acked)
        print("  %d kills in %.0f s, %d traces acknowledged so far" %
              (kills, time.time() - t_start, n_acked), flush=True)
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

# the checks: two threads, one keep-alive connection each (the server has two workers); a long
# run has hundreds of thousands of traces
import http.client

def fetch(conn_box, tid):
    for attempt in range(2):
        try:
            if conn_box[0] is None:
                conn_box[0] = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
            conn_box[0].request("GET", "/api/v3/traces/%s" % tid)
            r = conn_box[0].getresponse()
            body = r.read()
            if r.status != 200:
                return "HTTP %d" % r.status
            return canon_batch(json.loads(body)["result"])
        except (http.client.HTTPException, OSError):
            conn_box[0].close()
            conn_box[0] = None
            if attempt == 1:
                return "no answer"

passed = failed = 0
spans_checked = 0
report_lock = threading.Lock()
items = sorted(acked.items())

def checker(part):
    global passed, failed, spans_checked
    conn_box = [None]
    for tid, n in part:
        want = canon_batch(make_batch(n)[1])
        got = fetch(conn_box, tid)
        with report_lock:
            spans_checked += len(want)
            if got == want:
                passed += 1
            else:
                failed += 1
                if failed <= 5:
                    print("acknowledged trace %s differs or is missing after the crashes:\n"
                          "  want %r\n  got  %r" % (tid, want, got), file=sys.stderr)

t_check = time.time()
checkers = [threading.Thread(target=checker, args=(items[k::2],)) for k in range(2)]
for t in checkers:
    t.start()
for t in checkers:
    t.join()
check_secs = time.time() - t_check

server.send_signal(signal.SIGTERM)
try:
    server.wait(timeout=10)
except subprocess.TimeoutExpired:
    server.kill()
    print("FAIL: clew serve did not stop on SIGTERM", file=sys.stderr)
    failed += 1
print("%d kills, %d sent, %d acknowledged traces, %d traces and %d spans checked" %
      (kills, counter[0], len(acked), passed + failed, spans_checked))
print("%d passed, %d failed (checked in %.0f s)" % (passed, failed, check_secs))
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
