#!/usr/bin/env bash
# tests/integration/test_serve_grpc.sh - a real `clew serve` with its OTLP/gRPC receiver on
# loopback, driven by real HTTP/2 clients: curl (--http2-prior-knowledge, trailers read from
# -D), nghttp (nghttp2-client: many concurrent streams on one connection) and a few raw HTTP/2
# frames from python3 (GOAWAY on SIGTERM, streams reset while a worker holds them). Checks the
# grpc-status of every error case, that accepted traces are readable through the query API,
# the receiver's metrics, and a clean exit.
#
# Env: CLEW_BIN (the clew binary), CLEW_SOURCE_DIR (for src/codec/otlp.proto).
# Every check prints what it checked; the first failure stops the script.
set -euo pipefail

: "${CLEW_BIN:?set CLEW_BIN to the clew binary}"
: "${CLEW_SOURCE_DIR:?set CLEW_SOURCE_DIR to the source tree}"
PROTO_DIR="$CLEW_SOURCE_DIR/src/codec"
for tool in curl nghttp protoc python3 gzip; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed (scripts/install-deps.sh)" >&2; exit 1; }
done
curl -V | grep HTTP2 >/dev/null || { echo "FAIL: this curl has no HTTP/2 support" >&2; exit 1; }

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"
serve_init_tmpdir clew-it-grpc
LOG="$TMP/server.log"

# pb_request TRACE_ID SPAN_ID NAME FILE [EXTRA_SPANS_TEXT]: an ExportTraceServiceRequest
pb_request() {
  cat >"$TMP/req.txt" <<EOF
resource_spans {
  resource { attributes { key: "service.name" value { string_value: "it-grpc" } } }
  scope_spans {
    scope { name: "it" }
    spans {
      trace_id: "$(hex_to_proto "$1")"
      span_id: "$(hex_to_proto "$2")"
      name: "$3"
      kind: SPAN_KIND_SERVER
      start_time_unix_nano: 1700000000000000000
      end_time_unix_nano: 1700000000500000000
      attributes { key: "rpc.system" value { string_value: "grpc" } }
    }
    ${5:-}
  }
}
EOF
  protoc --encode=clew.otlp.ExportTraceServiceRequest --proto_path="$PROTO_DIR" otlp.proto \
    <"$TMP/req.txt" >"$4" || fail "protoc could not encode the test request"
}

# frame IN OUT [FLAG]: one gRPC length-prefixed message
frame() {
  python3 - "$1" "$2" "${3:-0}" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(bytes([int(sys.argv[3])]) + struct.pack(">I", len(data)) + data)
EOF
}

METHOD=/opentelemetry.proto.collector.trace.v1.TraceService/Export

# call FILE [PATH] [curl args...]: one unary call; sets STATUS (grpc-status), GMSG
# (grpc-message), HCODE (HTTP status); the response message in $TMP/resp
call() {
  local file=$1 path=${2:-$METHOD}
  shift 2 || shift $#
  HCODE=$(curl -sS --http2-prior-knowledge -o "$TMP/resp" -D "$TMP/hdr" -w '%{http_code}' \
    -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @"$file" "$@" \
    "http://127.0.0.1:$GRPC_PORT$path") || fail "curl could not call $path"
  STATUS=$({ grep -i '^grpc-status:' "$TMP/hdr" || true; } | tail -1 | cut -d: -f2- | tr -d ' \r')
  GMSG=$({ grep -i '^grpc-message:' "$TMP/hdr" || true; } | tail -1 | cut -d: -f2- | sed 's/^ //' | tr -d '\r')
}
expect_status() { # expect_status WANT WHAT
  [ "$HCODE" = 200 ] || fail "$2: expected HTTP 200, got $HCODE"
  [ "$STATUS" = "$1" ] || fail "$2: expected grpc-status $1, got '$STATUS' (grpc-message: $GMSG)"
}
get() {
  CODE=$(curl -s -o "$TMP/get" -w '%{http_code}' "$1") || true
}
expect_trace() { # expect_trace TRACE_ID SPAN_ID WHAT
  get "$QUERY/api/traces/$1"
  [ "$CODE" = 200 ] || fail "$3: GET /api/traces/$1 answered $CODE"
  grep -qi "\"spanID\":\"$2\"" "$TMP/get" || fail "$3: /api/traces/$1 lacks span $2: $(head -c 300 "$TMP/get")"
  grep -q '"serviceName":"it-grpc"' "$TMP/get" || fail "$3: /api/traces/$1 lacks the service name"
  get "$QUERY/api/v3/traces/$1"
  [ "$CODE" = 200 ] || fail "$3: GET /api/v3/traces/$1 answered $CODE"
  grep -qi "$2" "$TMP/get" || fail "$3: /api/v3/traces/$1 lacks span $2"
  ok "$3: trace $1 readable via /api/traces and /api/v3/traces"
}
metric() { # metric 'NAME{LABELS}' -> value
  curl -s "$QUERY/metrics" | grep -F "$1 " | grep -v '^#' | awk '{print $2}'
}

# Listeners this test does not use are turned off, so that their default ports (which other
# tests or services on the machine may hold) cannot keep the server from starting.
OFF_FLAGS=(--otlp-http off)
if "$CLEW_BIN" serve --help | grep -- '--zipkin ' >/dev/null; then
  OFF_FLAGS+=(--zipkin off)
fi

start_server() { # start_server [extra flags...]
  GRPC_PORT=$(free_port)
  QUERY_PORT=$(free_port)
  QUERY="http://127.0.0.1:$QUERY_PORT"
  "$CLEW_BIN" serve --otlp-grpc "127.0.0.1:$GRPC_PORT" "${OFF_FLAGS[@]}" \
    --http "127.0.0.1:$QUERY_PORT" --data-dir "$TMP/data" "$@" >"$LOG" 2>&1 &
  SERVER_PID=$!
  serve_wait_ready "$QUERY/readyz" "$SERVER_PID" || fail "clew serve did not become ready"
}
stop_server() { # SIGTERM (unless already sent); the exit must be 0 within 15 s
  [ "${1:-}" = sent ] || kill -TERM "$SERVER_PID"
  local code=0
  for _ in $(seq 1 150); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$SERVER_PID" 2>/dev/null && fail "clew serve still running 15 s after SIGTERM"
  wait "$SERVER_PID" || code=$?
  SERVER_PID=""
  [ "$code" = 0 ] || fail "clew serve exited $code on SIGTERM"
  ! grep -q "ERROR: AddressSanitizer\|WARNING: ThreadSanitizer\|runtime error:" "$LOG" || fail "sanitizer report in the server log"
}

# ---- flags ----
"$CLEW_BIN" serve --help | grep -- "--otlp-grpc" >/dev/null || fail "--help does not list --otlp-grpc"
"$CLEW_BIN" serve --print-config | grep '^otlp_grpc: "*127.0.0.1:4317' >/dev/null ||
  fail "the default --otlp-grpc is not 127.0.0.1:4317: $("$CLEW_BIN" serve --print-config | grep otlp_grpc)"
if "$CLEW_BIN" serve --otlp-grpc 127.0.0.1:4999 --http 127.0.0.1:4999 --data-dir "$TMP/x" \
  >/dev/null 2>"$TMP/conflict.err"; then
  fail "the same port for --otlp-grpc and --http was accepted"
fi
grep -q "otlp_grpc and http are both set to port 4999" "$TMP/conflict.err" ||
  fail "port conflict message: $(cat "$TMP/conflict.err")"
ok "--otlp-grpc: listed in --help, default 127.0.0.1:4317, port conflicts refused"

# ---- a server with a 1 MiB message limit ----
start_server --max-request-body 1MiB --max-memory 512MiB

# valid call: grpc-status 0, the response message is an empty ExportTraceServiceResponse
T1=$(rand_hex 16) S1=$(rand_hex 8)
pb_request "$T1" "$S1" "grpc-plain" "$TMP/r1.pb"
frame "$TMP/r1.pb" "$TMP/r1.grpc"
call "$TMP/r1.grpc"
expect_status 0 "valid call"
grep -qi '^content-type: application/grpc' "$TMP/hdr" || fail "valid call: content-type is not application/grpc"
[ "$(od -An -tx1 "$TMP/resp" | tr -d ' \n')" = "0000000000" ] ||
  fail "valid call: expected one empty response message (00 00000000), got $(od -An -tx1 "$TMP/resp")"
ok "valid call: HTTP 200, application/grpc, an empty ExportTraceServiceResponse, grpc-status 0"
expect_trace "$T1" "$S1" "valid call"

# grpc-encoding gzip with the compressed flag
T2=$(rand_hex 16) S2=$(rand_hex 8)
pb_request "$T2" "$S2" "grpc-gzip" "$TMP/r2.pb"
gzip -c "$TMP/r2.pb" >"$TMP/r2.pb.gz"
frame "$TMP/r2.pb.gz" "$TMP/r2.grpc" 1
call "$TMP/r2.grpc" "$METHOD" -H 'grpc-encoding: gzip'
expect_status 0 "gzip call"
expect_trace "$T2" "$S2" "gzip call"

# partial success: a span with an all-zero trace id is rejected, the other stored
T3=$(rand_hex 16) S3=$(rand_hex 8)
pb_request "$T3" "$S3" "grpc-partial" "$TMP/r3.pb" \
  'spans { trace_id: "\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000" span_id: "\001\002\003\004\005\006\007\010" name: "bad-id" }'
frame "$TMP/r3.pb" "$TMP/r3.grpc"
call "$TMP/r3.grpc"
expect_status 0 "partial success"
tail -c +6 "$TMP/resp" >"$TMP/resp.pb"
decoded=$(protoc --decode=clew.otlp.ExportTraceServiceResponse --proto_path="$PROTO_DIR" otlp.proto <"$TMP/resp.pb") ||
  fail "partial success: the response message does not decode"
echo "$decoded" | grep -q "rejected_spans: 1" || fail "partial success: expected rejected_spans 1, got: $decoded"
expect_trace "$T3" "$S3" "partial success (rejected_spans 1)"

# malformed protobuf -> INVALID_ARGUMENT with the decoder's message
printf '\x0a\x05abc' >"$TMP/bad.pb"
frame "$TMP/bad.pb" "$TMP/bad.grpc"
call "$TMP/bad.grpc"
expect_status 3 "malformed protobuf"
echo "$GMSG" | grep -q "malformed OTLP protobuf request" || fail "malformed: grpc-message '$GMSG'"
ok "malformed protobuf: grpc-status 3, grpc-message '$GMSG'"

# unknown method -> UNIMPLEMENTED
call "$TMP/r1.grpc" /opentelemetry.proto.collector.metrics.v1.MetricsService/Export
expect_status 12 "unknown method"
echo "$GMSG" | grep -q "MetricsService" || fail "unknown method: grpc-message '$GMSG'"
ok "unknown method: grpc-status 12"

# over the message limit -> RESOURCE_EXHAUSTED, refused on the prefix
python3 -c 'import struct,sys; sys.stdout.buffer.write(b"\0"+struct.pack(">I",2*1024*1024)+b"\0"*4096)' >"$TMP/big.grpc"
call "$TMP/big.grpc"
expect_status 8 "message over --max-request-body"
echo "$GMSG" | grep -q "more than the limit of 1048576 bytes" || fail "over limit: grpc-message '$GMSG'"
ok "message over the limit: grpc-status 8 ($GMSG)"

# a gzip bomb: small on the wire, over the limit inflated -> RESOURCE_EXHAUSTED
head -c $((3 * 1024 * 1024)) /dev/zero | gzip -c >"$TMP/bomb.gz"
frame "$TMP/bomb.gz" "$TMP/bomb.grpc" 1
call "$TMP/bomb.grpc" "$METHOD" -H 'grpc-encoding: gzip'
expect_status 8 "gzip bomb"
ok "gzip message inflating past the limit: grpc-status 8"

# framing errors -> INTERNAL
gzip -c "$TMP/r1.pb" >"$TMP/r1.pb.gz"
frame "$TMP/r1.pb.gz" "$TMP/x.grpc" 1
call "$TMP/x.grpc"
expect_status 13 "compressed flag without grpc-encoding"
printf '\x00\x00\x00' >"$TMP/trunc.grpc"
call "$TMP/trunc.grpc"
expect_status 13 "truncated prefix"
cat "$TMP/r1.grpc" "$TMP/r1.grpc" >"$TMP/two.grpc"
call "$TMP/two.grpc"
expect_status 13 "two messages on a unary call"
: >"$TMP/empty.grpc"
call "$TMP/empty.grpc"
expect_status 13 "no message"
call "$TMP/r1.grpc" "$METHOD" -H 'grpc-encoding: snappy'
expect_status 12 "unknown grpc-encoding"
ok "framing errors: compressed without encoding, truncated, two messages, none -> 13; grpc-encoding snappy -> 12"

# not gRPC: wrong content-type -> HTTP 415 (gRPC over HTTP/2 spec), GET -> 405
HCODE=$(curl -sS --http2-prior-knowledge -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
  --data-binary @"$TMP/r1.grpc" "http://127.0.0.1:$GRPC_PORT$METHOD")
[ "$HCODE" = 415 ] || fail "content-type application/json: expected HTTP 415, got $HCODE"
HCODE=$(curl -sS --http2-prior-knowledge -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GRPC_PORT$METHOD")
[ "$HCODE" = 405 ] || fail "GET: expected HTTP 405, got $HCODE"
ok "content-type application/json -> HTTP 415, GET -> HTTP 405"

# many concurrent streams on one connection (nghttp -m: the same call 40 times at once)
T4=$(rand_hex 16) S4=$(rand_hex 8)
pb_request "$T4" "$S4" "grpc-concurrent" "$TMP/r4.pb"
frame "$TMP/r4.pb" "$TMP/r4.grpc"
nghttp -v -n -m 40 -H ':method: POST' -H 'content-type: application/grpc' -H 'te: trailers' \
  -d "$TMP/r4.grpc" "http://127.0.0.1:$GRPC_PORT$METHOD" >"$TMP/nghttp.out" 2>&1 ||
  fail "nghttp failed: $(tail -5 "$TMP/nghttp.out")"
n_ok=$(grep -c 'grpc-status: 0' "$TMP/nghttp.out" || true)
n_streams=$(grep -o 'recv (stream_id=[0-9]*) grpc-status' "$TMP/nghttp.out" | sort -u | wc -l)
[ "$n_ok" = 40 ] && [ "$n_streams" = 40 ] ||
  fail "40 concurrent calls on one connection: $n_ok answered grpc-status 0 on $n_streams streams: $(grep -e grpc-status -e grpc-message "$TMP/nghttp.out" | grep -v 'status: 0' | head -4)"
grep -q 'SETTINGS_MAX_CONCURRENT_STREAMS' "$TMP/nghttp.out" || fail "no SETTINGS_MAX_CONCURRENT_STREAMS from the server"
expect_trace "$T4" "$S4" "40 concurrent streams on one connection, all grpc-status 0,"

# raw HTTP/2 frames: a PING is answered, streams reset by the client while a worker may hold
# them do no harm, and the connection still serves the next call
python3 - "$GRPC_PORT" "$TMP/r4.grpc" >"$TMP/raw.out" 2>&1 <<'EOF' || fail "raw HTTP/2 client: $(cat "$TMP/raw.out")"
import socket, struct, sys, time
port, body = int(sys.argv[1]), open(sys.argv[2], "rb").read()
def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload
def lit(name, value):  # HPACK literal header field without indexing, new name, no Huffman
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v
hdrs = (lit(":method", "POST") + lit(":scheme", "http") + lit(":authority", "x")
        + lit(":path", "/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        + lit("content-type", "application/grpc") + lit("te", "trailers"))
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
s.sendall(frame(6, 0, 0, b"12345678"))  # PING
out = b""
# 60 calls, each reset (RST_STREAM CANCEL) right after its last DATA: the worker may hold it
for i in range(60):
    sid = 1 + 2 * i
    s.sendall(frame(1, 4, sid, hdrs) + frame(0, 1, sid, body) + frame(3, 0, sid, struct.pack(">I", 8)))
# then one normal call on the same connection must still work
sid = 1 + 2 * 60
s.sendall(frame(1, 4, sid, hdrs) + frame(0, 1, sid, body))
s.settimeout(10)
got_pong = got_last = False
deadline = time.time() + 10
while time.time() < deadline and not (got_pong and got_last):
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
    while len(out) >= 9:
        ln = int.from_bytes(out[:3], "big")
        if len(out) < 9 + ln:
            break
        t, fl, fsid = out[3], out[4], int.from_bytes(out[5:9], "big") & 0x7fffffff
        if t == 4 and not fl & 1:
            s.sendall(frame(4, 1, 0))  # SETTINGS ack
        if t == 6 and fl & 1 and out[9:9 + ln] == b"12345678":
            got_pong = True
        if t == 1 and fsid == sid and fl & 1:
            got_last = True  # HEADERS with END_STREAM: the trailers
        out = out[9 + ln:]
s.close()
print("pong" if got_pong else "no pong", "last call answered" if got_last else "last call not answered")
sys.exit(0 if got_pong and got_last else 1)
EOF
kill -0 "$SERVER_PID" 2>/dev/null || fail "clew serve died after streams were reset"
ok "PING answered; 60 streams reset while in flight, the next call on the connection answered: $(cat "$TMP/raw.out")"

# metrics of the receiver
sleep 0.3
[ "$(metric 'clew_grpc_calls_total{receiver="otlp_grpc",grpc_status="3"}')" = 1 ] || fail "grpc_status 3 not counted once"
[ "$(metric 'clew_grpc_calls_total{receiver="otlp_grpc",grpc_status="8"}')" = 2 ] || fail "grpc_status 8 not counted twice"
[ "$(metric 'clew_grpc_calls_total{receiver="otlp_grpc",grpc_status="12"}')" = 2 ] || fail "grpc_status 12 not counted twice"
ok_calls=$(metric 'clew_grpc_calls_total{receiver="otlp_grpc",grpc_status="0"}')
[ "$ok_calls" -ge 43 ] || fail "grpc_status 0 counted $ok_calls times, expected at least 43"
accepted=$(metric 'clew_spans_accepted_total{receiver="otlp_grpc"}')
[ "$accepted" -ge 43 ] || fail "spans accepted over gRPC: $accepted, expected at least 43"
[ "$(metric 'clew_grpc_connections{receiver="otlp_grpc"}')" = 0 ] || fail "connections gauge not back to 0"
[ "$(metric 'clew_grpc_streams{receiver="otlp_grpc"}')" = 0 ] || fail "streams gauge not back to 0"
[ "$(metric 'clew_inflight_bytes')" = 0 ] || fail "ingest budget not fully released: $(metric clew_inflight_bytes)"
# each reset arrived in the same segment as its call, so (almost) every call was still in the
# pool when its stream went away: done() found no stream and counted CANCELLED
cancelled=$(metric 'clew_grpc_calls_total{receiver="otlp_grpc",grpc_status="1"}')
[ "$cancelled" -ge 1 ] || fail "no call was counted CANCELLED: the reset-while-in-the-pool path did not run"
ok "metrics: calls by grpc-status, spans accepted ($accepted), connections and streams back to 0, budget released, $cancelled calls reset while in the pool"

# ---- SIGTERM with a call in flight: GOAWAY notice, the call still completes, final GOAWAY ----
# Stream 1 has sent half its message when SIGTERM arrives. The server must send the shutdown
# notice (GOAWAY, last stream id 2^31-1), refuse a call opened after it (stream 3: Trailers-Only,
# no DATA), store stream 1 once its message is complete (answer: a 5-byte DATA frame, the empty
# ExportTraceServiceResponse, then trailers), and only then send the final GOAWAY (last stream
# id 3) and close.
python3 - "$GRPC_PORT" "$SERVER_PID" "$TMP/r1.grpc" >"$TMP/goaway.out" 2>&1 <<'EOF' || fail "GOAWAY on SIGTERM: $(cat "$TMP/goaway.out")"
import os, signal, socket, struct, sys, time
port, pid, body = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read()
def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload
def lit(name, value):
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v
hdrs = (lit(":method", "POST") + lit(":scheme", "http") + lit(":authority", "x")
        + lit(":path", "/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        + lit("content-type", "application/grpc"))
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(10)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
half = len(body) // 2
s.sendall(frame(1, 4, 1, hdrs) + frame(0, 0, 1, body[:half]))
time.sleep(0.3)
os.kill(pid, signal.SIGTERM)
events, buf, closed = [], b"", False
def pump(until):
    global buf, closed
    deadline = time.time() + 10
    while time.time() < deadline and not until():
        chunk = s.recv(65536)
        if not chunk:
            closed = True
            return
        buf += chunk
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            ln, t, fl = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
            sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
            p = buf[9:9 + ln]
            if t == 4 and not fl & 1:
                s.sendall(frame(4, 1, 0))
            elif t == 7:
                events.append(("GOAWAY", int.from_bytes(p[:4], "big") & 0x7fffffff,
                               int.from_bytes(p[4:8], "big")))
            elif t == 0 and sid:
                events.append(("DATA", sid, ln))
            elif t == 1:
                events.append(("HEADERS", sid, "END_STREAM" if fl & 1 else ""))
            buf = buf[9 + ln:]
pump(lambda: any(e[0] == "GOAWAY" for e in events))
s.sendall(frame(1, 5, 3, hdrs))  # a new call after the notice, no body
pump(lambda: ("HEADERS", 3, "END_STREAM") in events)
s.sendall(frame(0, 1, 1, body[half:]))  # the rest of stream 1
pump(lambda: closed)
print("events:", events)
want_order = [("GOAWAY", 2147483647, 0), ("DATA", 1, 5), ("HEADERS", 1, "END_STREAM"), ("GOAWAY", 3, 0)]
positions = [events.index(e) if e in events else -1 for e in want_order]
ok = (-1 not in positions and positions == sorted(positions) and ("DATA", 3, 5) not in events
      and ("HEADERS", 3, "END_STREAM") in events and closed)
sys.exit(0 if ok else 1)
EOF
ok "SIGTERM with a call in flight: notice, late call refused, call completed, final GOAWAY: $(cat "$TMP/goaway.out")"
stop_server sent
ok "clew serve exited 0 on SIGTERM, no sanitizer report"

# ---- back-pressure: a full ingest budget answers UNAVAILABLE; a reset gives the budget back ----
# --max-memory 16MiB leaves a 4 MiB ingest budget. Stream 1 announces a 3 MiB message and sends
# only part of it, which holds 3 MiB of budget; stream 3 then announces 2 MiB, which cannot fit.
start_server --max-memory 16MiB --max-request-body 3MiB
python3 - "$GRPC_PORT" "$QUERY" >"$TMP/busy.out" 2>&1 <<'EOF' || fail "back-pressure: $(cat "$TMP/busy.out")"
import socket, struct, sys, time, urllib.request
port, query = int(sys.argv[1]), sys.argv[2]
def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload
def lit(name, value):
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v
hdrs = (lit(":method", "POST") + lit(":scheme", "http") + lit(":authority", "x")
        + lit(":path", "/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        + lit("content-type", "application/grpc"))
def metric(name):
    for line in urllib.request.urlopen(query + "/metrics").read().decode().splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return None
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
s.sendall(frame(1, 4, 1, hdrs) + frame(0, 0, 1, b"\x00" + struct.pack(">I", 3 << 20) + b"\x0a" * 1000))
time.sleep(0.3)
held = metric("clew_inflight_bytes")
# stream 3 ends its (short) body at once: the budget refusal is decided at the prefix and
# answered when the client is done sending
s.sendall(frame(1, 4, 3, hdrs) + frame(0, 1, 3, b"\x00" + struct.pack(">I", 2 << 20) + b"\x0a" * 1000))
s.settimeout(5)
buf, answered3 = b"", False
deadline = time.time() + 5
while time.time() < deadline and not answered3:
    buf += s.recv(65536)
    while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
        ln, t, fl = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
        sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
        if t == 1 and sid == 3 and fl & 1:
            answered3 = True
        buf = buf[9 + ln:]
unavailable = metric('clew_grpc_calls_total{receiver="otlp_grpc",grpc_status="14"}')
s.sendall(frame(3, 0, 1, struct.pack(">I", 8)))  # RST_STREAM CANCEL on the half-sent call
time.sleep(0.3)
after = metric("clew_inflight_bytes")
print("held %s bytes; stream 3 answered: %s; UNAVAILABLE calls: %s; after the reset: %s bytes"
      % (held, answered3, unavailable, after))
sys.exit(0 if held == 3 << 20 and answered3 and unavailable == 1 and after == 0 else 1)
EOF
ok "back-pressure: $(cat "$TMP/busy.out")"
stop_server

# ---- an idle connection gets GOAWAY after --timeout, then is closed ----
start_server --timeout 1s
python3 - "$GRPC_PORT" >"$TMP/idle.out" 2>&1 <<'EOF' || fail "idle connection: $(cat "$TMP/idle.out")"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
t0, data = time.time(), b""
s.settimeout(10)
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
types = []
while len(data) >= 9:
    types.append(data[3])
    data = data[9 + int.from_bytes(data[:3], "big"):]
took = time.time() - t0
print("closed after %.1f s; frame types %s" % (took, types))
sys.exit(0 if 7 in types and 0.8 < took < 5 else 1)
EOF
ok "idle connection with --timeout 1s: $(cat "$TMP/idle.out") (7 = GOAWAY)"
stop_server

# ---- span limits and --max-connections apply to gRPC like the HTTP receivers ----
start_server --span-attribute-count-limit 1 --max-connections 2
TID=$(rand_hex 16)
SID=$(rand_hex 8)
SID2=$(rand_hex 8)
pb_request "$TID" "$SID" "limited" "$TMP/lim.pb" "spans {
      trace_id: \"$(hex_to_proto "$TID")\"
      span_id: \"$(hex_to_proto "$SID2")\"
      name: \"three-attrs\"
      start_time_unix_nano: 1700000000000000000
      end_time_unix_nano: 1700000000100000000
      attributes { key: \"a\" value { string_value: \"1\" } }
      attributes { key: \"b\" value { string_value: \"2\" } }
      attributes { key: \"c\" value { string_value: \"3\" } }
    }"
frame "$TMP/lim.pb" "$TMP/lim.bin"
call "$TMP/lim.bin"
expect_status 0 "span limits"
get "$QUERY/api/v3/traces/$TID"
python3 - "$TMP/get" "$SID2" <<'EOF' || fail "--span-attribute-count-limit 1 not applied to gRPC spans"
import json, sys
doc = json.load(open(sys.argv[1]))
spans = [s for rs in doc["result"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
span = [s for s in spans if s["spanId"] == sys.argv[2]][0]
kept = len(span.get("attributes", []))
dropped = int(span.get("droppedAttributesCount", 0))
if (kept, dropped) != (1, 2):
    sys.exit("expected 1 attribute kept and 2 dropped, got %d kept and %d dropped" % (kept, dropped))
EOF
ok "gRPC: --span-attribute-count-limit 1 keeps 1 attribute and records 2 dropped"
python3 - "$GRPC_PORT" <<'EOF' >"$TMP/conns.out" || fail "--max-connections 2: $(cat "$TMP/conns.out")"
import socket, sys, time
port = int(sys.argv[1])
held = []
for _ in range(2):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    held.append(s)
time.sleep(0.3)
third = socket.create_connection(("127.0.0.1", port))
third.settimeout(3)
try:
    closed = third.recv(1) == b""
except ConnectionResetError:
    closed = True
except socket.timeout:
    closed = False
print("third connection closed at once" if closed else "third connection stayed open")
sys.exit(0 if closed else 1)
EOF
[ "$(metric 'clew_grpc_connections_refused_total{receiver="otlp_grpc"}')" -ge 1 ] ||
  fail "clew_grpc_connections_refused_total did not count the refused connection"
ok "gRPC: --max-connections 2 closes the third connection and counts it"
stop_server

# ---- --otlp-grpc off opens nothing ----
QUERY_PORT=$(free_port)
QUERY="http://127.0.0.1:$QUERY_PORT"
"$CLEW_BIN" serve --otlp-grpc off "${OFF_FLAGS[@]}" --http "127.0.0.1:$QUERY_PORT" --data-dir "$TMP/data" >"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs -o /dev/null "$QUERY/readyz" 2>/dev/null && break
  sleep 0.1
done
grep -q "OTLP/gRPC is off" "$LOG" || fail "--otlp-grpc off: not logged"
! grep -q "OTLP/gRPC)" "$LOG" || fail "--otlp-grpc off still opened a listener"
stop_server
ok "--otlp-grpc off: no listener"
echo "all gRPC receiver checks passed"
