#!/usr/bin/env bash
# tests/integration/test_flood.sh - back-pressure and connection limits of a real
# `clew serve`:
#   1. flood: concurrent large requests (Zipkin JSON and OTLP/JSON) past a small
#      --max-memory. Some must get 429 + Retry-After; the server's peak RSS
#      (VmHWM) must stay under --max-memory + the idle server's own peak + a
#      stated slack; every acknowledged span must be stored; the server must be
#      healthy afterwards.
#   2. slowloris: clients sending their headers one byte per second are cut off
#      after --timeout, while normal requests keep being served.
#   3. --max-connections: connections past it are closed at once and counted.
#
# Env: CLEW_BIN. Prints "N passed, M failed"; exit 1 if any failed.
set -uo pipefail

: "${CLEW_BIN:?set CLEW_BIN to the clew binary}"
: "${CLEW_SOURCE_DIR:?set CLEW_SOURCE_DIR to the source tree}"
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed" >&2; exit 1; }
done

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"
serve_init_tmpdir clew-it-flood
LOG=""
PASSED=0
FAILED=0

pass() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
flunk() {
  echo "FAIL: $*" >&2
  FAILED=$((FAILED + 1))
  if [ -n "$LOG" ] && [ -f "$LOG" ]; then
    echo "--- server log (last 15 lines) ---" >&2
    tail -15 "$LOG" >&2
  fi
}
check() { # check WHAT COMMAND...
  local what=$1
  shift
  if "$@"; then pass "$what"; else flunk "$what"; fi
}

vmhwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# Under ASan freed memory sits in a quarantine (256 MiB by default), which would
# say nothing about the server's budgets: keep it small for this test.
LDD_OUT=$(ldd "$CLEW_BIN" 2>/dev/null || true)
if [[ "$LDD_OUT" == *libasan* ]]; then
  SANITIZED=1
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
elif [[ "$LDD_OUT" == *libtsan* ]]; then
  SANITIZED=2 # ThreadSanitizer: its shadow and history cost 5-10x the program's own memory
else
  SANITIZED=0
fi

# start_server NAME ARGS...: sets SERVER_PID, ZIPKIN, OTLP, QUERY, LOG
start_server() {
  local name=$1
  shift
  local zp op qp
  zp=$(free_port); op=$(free_port); qp=$(free_port)
  ZIPKIN="http://127.0.0.1:$zp"
  OTLP="http://127.0.0.1:$op"
  QUERY="http://127.0.0.1:$qp"
  ZPORT=$zp
  LOG="$TMP/$name.log"
  "$CLEW_BIN" serve --zipkin "127.0.0.1:$zp" --otlp-http "127.0.0.1:$op" --otlp-grpc off \
    --http "127.0.0.1:$qp" --data-dir "$TMP/data-$name" --retention 87600h "$@" >"$LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null -w '%{http_code}' "$QUERY/readyz" 2>/dev/null | grep -q 200; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: server $name did not start" >&2
  tail -20 "$LOG" >&2
  exit 1
}
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID"
  local rc=$?
  SERVER_PID=""
  return $rc
}

MAX_MEMORY_MIB=64
COMMON=(--max-memory "${MAX_MEMORY_MIB}MiB" --max-traces 10000000 --max-request-body 2MiB
  --workers 2)

# ---- the idle server's own peak RSS, the fixed overhead of the bound ----
start_server idle "${COMMON[@]}"
for _ in 1 2 3; do curl -s -o /dev/null "$QUERY/metrics"; done
sleep 0.5
IDLE_KIB=$(vmhwm_kib "$SERVER_PID")
stop_server || flunk "idle server exit code $?"
# Slack on top of max-memory + idle peak: libevent's per-connection buffers and
# the reply buffers (outside every budget), thread stacks touched under load,
# malloc fragmentation. Under ASan also its shadow memory (1/8 of everything) and
# redzones around every allocation, so the budgeted memory itself counts 1.5x.
if [ "$SANITIZED" = 1 ]; then
  BOUND_KIB=$((IDLE_KIB + MAX_MEMORY_MIB * 1024 * 3 / 2 + 16 * 1024))
elif [ "$SANITIZED" = 2 ]; then
  BOUND_KIB=$((IDLE_KIB + MAX_MEMORY_MIB * 1024 * 8 + 16 * 1024))
else
  BOUND_KIB=$((IDLE_KIB + MAX_MEMORY_MIB * 1024 + 16 * 1024))
fi
echo "idle server peak RSS: $((IDLE_KIB / 1024)) MiB (sanitized=$SANITIZED); bound under load: $((BOUND_KIB / 1024)) MiB"

# ---- 1. the flood ----
start_server flood "${COMMON[@]}"
python3 - "$ZIPKIN" "$OTLP" "$TMP/acked.txt" "$TMP/flood.txt" <<'EOF'
import http.client, json, os, sys, threading, time, urllib.parse

zipkin, otlp, acked_path, report_path = sys.argv[1:5]
THREADS, REQUESTS_PER_THREAD, SPANS = 16, 5, 1000
lock = threading.Lock()
acked, codes, retry_after_missing = [], {}, 0

def zipkin_body(tid):
    spans = []
    for i in range(SPANS):
        spans.append({"traceId": tid, "id": "%016x" % (i + 1), "name": "flood-op",
                      "timestamp": 1700000000000000 + i, "duration": 10,
                      "localEndpoint": {"serviceName": "flood-zipkin"},
                      "tags": {"payload": "z" * 300, "i": str(i)}})
    return json.dumps(spans).encode()

def otlp_body(tid):
    spans = [{"traceId": tid, "spanId": "%016x" % (i + 1), "name": "flood-op",
              "startTimeUnixNano": str(1700000000000000000 + i),
              "endTimeUnixNano": str(1700000000000001000 + i),
              "attributes": [{"key": "payload", "value": {"stringValue": "o" * 300}}]}
             for i in range(SPANS)]
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "flood-otlp"}}]},
        "scopeSpans": [{"scope": {"name": "flood"}, "spans": spans}]}]}).encode()

def worker(n):
    global retry_after_missing
    use_zipkin = n % 2 == 0
    url = urllib.parse.urlsplit(zipkin if use_zipkin else otlp)
    path = "/api/v2/spans" if use_zipkin else "/v1/traces"
    conn = None
    for r in range(REQUESTS_PER_THREAD):
        tid = os.urandom(16).hex()
        body = zipkin_body(tid) if use_zipkin else otlp_body(tid)
        try:
            if conn is None:
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            code = resp.status
            if code in (429, 503) and resp.getheader("Retry-After") is None:
                with lock:
                    retry_after_missing += 1
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:
            code = "error:" + type(e).__name__
            if conn is not None:
                conn.close()
            conn = None
        with lock:
            codes[code] = codes.get(code, 0) + 1
            if code in (200, 202):
                acked.append((tid, SPANS))

threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(acked_path, "w") as f:
    for tid, n in acked:
        f.write(f"{tid} {n}\n")
with open(report_path, "w") as f:
    json.dump({"codes": {str(k): v for k, v in codes.items()},
               "retry_after_missing": retry_after_missing}, f)
print("flood answers:", codes, "429/503 without Retry-After:", retry_after_missing)
EOF
PEAK_KIB=$(vmhwm_kib "$SERVER_PID")
REPORT=$(cat "$TMP/flood.txt")
n429=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["codes"].get("429",0))' "$REPORT")
nerr=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1])["codes"]; print(sum(v for k,v in c.items() if k not in ("200","202","429")))' "$REPORT")
nmiss=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["retry_after_missing"])' "$REPORT")
nacked=$(wc -l <"$TMP/acked.txt")
check "the flood got some 429 answers ($n429) past the ingest budget" [ "$n429" -gt 0 ]
check "every 429 carried Retry-After" [ "$nmiss" -eq 0 ]
check "no answer other than 200/202/429 and no broken connection ($nerr)" [ "$nerr" -eq 0 ]
check "some requests were acknowledged ($nacked)" [ "$nacked" -gt 0 ]
check "peak RSS $((PEAK_KIB / 1024)) MiB <= bound $((BOUND_KIB / 1024)) MiB (max-memory ${MAX_MEMORY_MIB} MiB + idle $((IDLE_KIB / 1024)) MiB + slack)" \
  [ "$PEAK_KIB" -le "$BOUND_KIB" ]
ingest_429=$(metric 'clew_receiver_spans_rejected_total{receiver="zipkin",reason="backpressure"}')
evicted=$(metric 'clew_store_evicted_traces_total')
check "the store evicted nothing (else stored counts would mean nothing): $evicted" [ "$evicted" -eq 0 ]

# every acknowledged trace is complete: all of them when few, else 200 of them,
# plus the span total on /metrics
python3 - "$QUERY" "$TMP/acked.txt" <<'EOF'
import json, random, sys, urllib.request
query, path = sys.argv[1:3]
acked = [l.split() for l in open(path) if l.strip()]
sample = acked if len(acked) <= 200 else random.sample(acked, 200)
bad = 0
for tid, n in sample:
    try:
        with urllib.request.urlopen(f"{query}/api/v3/traces/{tid}", timeout=30) as r:
            d = json.load(r)
        got = sum(len(ss["spans"]) for rs in d["result"]["resourceSpans"] for ss in rs["scopeSpans"])
    except Exception as e:
        got = f"error {e}"
    if got != int(n):
        bad += 1
        if bad <= 5:
            print(f"trace {tid}: {got} spans stored, {n} acknowledged")
print(f"{len(sample) - bad}/{len(sample)} acknowledged traces complete")
sys.exit(1 if bad else 0)
EOF
check "every sampled acknowledged trace is complete" [ $? -eq 0 ]
want_spans=$(awk '{s += $2} END {print s + 0}' "$TMP/acked.txt")
stored=$(metric 'clew_store_spans')
check "clew_store_spans ($stored) = acknowledged spans ($want_spans)" [ "$stored" -eq "$want_spans" ]
code=$(curl -s -o /dev/null -w '%{http_code}' "$QUERY/healthz")
check "/healthz 200 after the flood" [ "$code" = 200 ]
inflight=$(metric 'clew_inflight_bytes')
check "in-flight bytes back to 0 after the flood ($inflight)" [ "$inflight" -eq 0 ]
printf '[{"traceId":"%s","id":"00000000000000aa","name":"after","timestamp":1700000000000000,"duration":1,"localEndpoint":{"serviceName":"after"}}]' \
  "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" >"$TMP/after.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data-binary @"$TMP/after.json" "$ZIPKIN/api/v2/spans")
check "a fresh request after the flood is accepted (202)" [ "$code" = 202 ]
echo "info: zipkin spans refused with 429 by the store/budget path: $ingest_429"
stop_server
check "flood server exits 0 on SIGTERM (no leak, no crash)" [ $? -eq 0 ]

# ---- 2. slowloris and 3. connection limits ----
start_server conns --timeout 2s --max-connections 8 --workers 2
python3 - "$ZPORT" <<'EOF'
import socket, sys, threading, time
port = int(sys.argv[1])
results = {}

def slow(i):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(1.5)
    req = b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 40
    t0 = time.time()
    closed_after = None
    for b in req:
        try:
            s.sendall(bytes([b]))
        except OSError:
            closed_after = time.time() - t0
            break
        try:
            if s.recv(1024) == b"":
                closed_after = time.time() - t0
                break
        except socket.timeout:
            pass
        except OSError:
            closed_after = time.time() - t0
            break
        if time.time() - t0 > 15:
            break
    results[i] = closed_after
    s.close()

threads = [threading.Thread(target=slow, args=(i,)) for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("slowloris connections closed after (s):", results)
ok = all(v is not None and v < 8 for v in results.values())
sys.exit(0 if ok else 1)
EOF
check "slowloris clients (a header byte per ~1.5 s) are cut off within 8 s at --timeout 2s" [ $? -eq 0 ]
timed_out=$(metric "clew_http_connections_timed_out_total{listener=\"127.0.0.1:$ZPORT\"}")
check "clew_http_connections_timed_out_total counted them ($timed_out)" [ "$timed_out" -ge 3 ]

python3 - "$ZPORT" "$ZIPKIN" <<'EOF'
import socket, sys, time, urllib.request
port, url = int(sys.argv[1]), sys.argv[2]
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
time.sleep(0.5)
closed = 0
for s in socks:
    s.settimeout(0.02)  # all 20 checked well within the 2 s deadline of the kept ones
    try:
        if s.recv(16) == b"":
            closed += 1
    except socket.timeout:
        pass
    except OSError:
        closed += 1
print(f"{closed} of 20 idle connections closed at once with --max-connections 8")
for s in socks:
    s.close()
time.sleep(0.3)
# with the idle ones gone, a real request is served again
req = urllib.request.Request(url + "/api/v2/spans", data=b"[]", method="POST",
                             headers={"Content-Type": "application/json"})
code = urllib.request.urlopen(req, timeout=10).status
print("request after closing them:", code)
sys.exit(0 if closed == 12 and code == 202 else 1)
EOF
check "--max-connections 8: 12 of 20 connections closed at once, service resumes" [ $? -eq 0 ]
refused=$(metric "clew_http_connections_refused_total{listener=\"127.0.0.1:$ZPORT\"}")
check "clew_http_connections_refused_total counted them ($refused)" [ "$refused" -eq 12 ]
open=$(metric "clew_http_connections{listener=\"127.0.0.1:$ZPORT\"}")
check "open connection gauge back to 0 ($open)" [ "$open" -eq 0 ]
# clients that hang up: after a whole request (a worker holds it), mid-body, mid-headers.
# The server must answer nothing to nobody, forget every connection and stay healthy.
python3 - "$ZPORT" <<'EOF'
import json, os, socket, sys, threading
port = int(sys.argv[1])
spans = [{"traceId": os.urandom(16).hex(), "id": "%016x" % (i + 1), "name": "x",
          "timestamp": 1700000000000000, "duration": 1, "localEndpoint": {"serviceName": "hang"},
          "tags": {"p": "q" * 200}} for i in range(2000)]
body = json.dumps(spans).encode()
hdr = (b"POST /api/v2/spans HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       b"Content-Length: %d\r\n\r\n" % len(body))
def hang(mode):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall([hdr + body, hdr + body[: len(body) // 2], hdr[:20]][mode])
    s.close()
# at most 8 at a time: --max-connections is 8 here
for wave in range(6):
    ts = [threading.Thread(target=hang, args=((wave + i) % 3,)) for i in range(6)]
    [t.start() for t in ts]
    [t.join() for t in ts]
EOF
sleep 3
code=$(curl -s -o /dev/null -w '%{http_code}' "$QUERY/healthz")
open=$(metric "clew_http_connections{listener=\"127.0.0.1:$ZPORT\"}")
inflight=$(metric 'clew_inflight_requests')
check "36 clients hanging up (after, mid-body, mid-headers): healthy ($code), 0 connections ($open), 0 in flight ($inflight)" \
  test "$code" = 200 -a "$open" -eq 0 -a "$inflight" -eq 0
stop_server
check "connection-limit server exits 0 on SIGTERM" [ $? -eq 0 ]

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
