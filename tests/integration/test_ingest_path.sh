#!/usr/bin/env bash
# tests/integration/test_ingest_path.sh - what the OTLP/HTTP and OTLP/gRPC receivers hand the
# embedded store (the request's own protobuf bytes, the batch held until the WAL write
# completes) comes back right after a crash: a real `clew serve` with a short
# --attribute-value-length-limit takes, over each receiver, a plain protobuf request (logged as
# received), one whose value the limit truncates (so it must be logged truncated, never as
# received) and a gzip one, plus a JSON request over HTTP and one with a rejected span over
# gRPC (logged as the batch, never as received). Each protobuf request carries a marker in a
# field the decoder does not know: it is in the WAL exactly when the request's own bytes were
# logged. The server is killed with SIGKILL (no cut into blocks: the restart replays the WAL)
# and restarted on the same data dir. Every trace must read back identical to what it read
# before the crash, the long values truncated exactly as they were answered.
#
# Env: CLEW_BIN (the clew binary), CLEW_SOURCE_DIR (for src/codec/otlp.proto).
set -euo pipefail

: "${CLEW_BIN:?set CLEW_BIN to the clew binary}"
: "${CLEW_SOURCE_DIR:?set CLEW_SOURCE_DIR to the source tree}"
PROTO_DIR="$CLEW_SOURCE_DIR/src/codec"
for tool in curl protoc python3 gzip grep; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed" >&2; exit 1; }
done

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"
serve_init_tmpdir clew-it-ingest-path
LOG="$TMP/server.log"
DATA="$TMP/data"

start_server() {
    local tries
    for tries in 1 2 3; do
        OTLP_PORT=$(free_port)
        QUERY_PORT=$(free_port)
        GRPC_PORT=$(free_port)
        OTLP="http://127.0.0.1:$OTLP_PORT"
        QUERY="http://127.0.0.1:$QUERY_PORT"
        "$CLEW_BIN" serve --otlp-grpc "127.0.0.1:$GRPC_PORT" --zipkin off \
            --otlp-http "127.0.0.1:$OTLP_PORT" \
            --http "127.0.0.1:$QUERY_PORT" --data-dir "$DATA" --retention 100000h \
            --attribute-value-length-limit 8 >>"$LOG" 2>&1 &
        SERVER_PID=$!
        if serve_wait_ready "$QUERY/readyz" "$SERVER_PID"; then
            return 0
        fi
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        echo "clew serve did not become ready (try $tries)" >&2
    done
    fail "clew serve did not start"
}

# pb_request TRACE_ID SPAN_ID VALUE FILE [MARKER [EXTRA_SPANS_TEXT]]: one span with attribute
# app.note=VALUE (and EXTRA_SPANS_TEXT after it); MARKER goes into field 9 of the request, which
# ExportTraceServiceRequest does not have: decoders skip it, so only the request's own bytes
# carry it
pb_request() {
    cat >"$TMP/req.txt" <<EOF
resource_spans {
  resource { attributes { key: "service.name" value { string_value: "it-ingest" } } }
  scope_spans {
    scope { name: "it" }
    spans {
      trace_id: "$(hex_to_proto "$1")"
      span_id: "$(hex_to_proto "$2")"
      name: "op-$2"
      kind: SPAN_KIND_SERVER
      start_time_unix_nano: 1700000000000000000
      end_time_unix_nano: 1700000000500000000
      attributes { key: "app.note" value { string_value: "$3" } }
      attributes { key: "app.count" value { int_value: 42 } }
    }
    ${6:-}
  }
}
EOF
    protoc --encode=clew.otlp.ExportTraceServiceRequest --proto_path="$PROTO_DIR" otlp.proto \
        <"$TMP/req.txt" >"$4" || fail "protoc could not encode the test request"
    if [ -n "${5:-}" ]; then
        python3 - "$4" "$5" <<'PY'
import sys
m = sys.argv[2].encode()
assert len(m) < 128
open(sys.argv[1], "ab").write(bytes([9 << 3 | 2, len(m)]) + m)
PY
    fi
}

# in_wal MARKER: whether a file under the data dir (only the WAL before a cut) holds MARKER
in_wal() { grep -rqaF -- "$1" "$DATA"; }

# grpc_frame IN OUT [FLAG]: one gRPC length-prefixed message
grpc_frame() {
    python3 - "$1" "$2" "${3:-0}" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(bytes([int(sys.argv[3])]) + struct.pack(">I", len(data)) + data)
PY
}

# grpc_call FILE WHAT [curl args...]: one TraceService/Export call, which must end in
# grpc-status 0; the response message (prefix stripped) in $TMP/grpc_resp.pb
grpc_call() {
    local file=$1 what=$2 hcode status
    shift 2
    hcode=$(curl -sS --http2-prior-knowledge -o "$TMP/resp" -D "$TMP/hdr" -w '%{http_code}' \
        -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @"$file" "$@" \
        "http://127.0.0.1:$GRPC_PORT/opentelemetry.proto.collector.trace.v1.TraceService/Export") ||
        fail "$what: curl could not call the gRPC receiver"
    status=$({ grep -i '^grpc-status:' "$TMP/hdr" || true; } | tail -1 | cut -d: -f2- | tr -d ' \r')
    [ "$hcode" = 200 ] || fail "$what: expected HTTP 200, got $hcode"
    [ "$status" = 0 ] || fail "$what: expected grpc-status 0, got '$status'"
    tail -c +6 "$TMP/resp" >"$TMP/grpc_resp.pb"
}

# snapshot TRACE_ID OUT: the trace as /api/traces answers it, keys sorted
snapshot() {
    get "$QUERY/api/traces/$1"
    expect_code 200 "GET /api/traces/$1"
    python3 -c '
import json, sys
json.dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"), sort_keys=True, indent=1)' \
        "$TMP/resp" "$2"
}

# note_of TRACE_ID: the app.note tag of the trace's only span, from /api/traces
note_of() {
    get "$QUERY/api/traces/$1"
    expect_code 200 "GET /api/traces/$1"
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
tags = d["data"][0]["spans"][0]["tags"]
print([t["value"] for t in tags if t["key"] == "app.note"][0])' "$TMP/resp"
}

T_PLAIN=$(rand_hex 16) S_PLAIN=$(rand_hex 8)
T_LONG=$(rand_hex 16) S_LONG=$(rand_hex 8)
T_GZIP=$(rand_hex 16) S_GZIP=$(rand_hex 8)
T_JSON=$(rand_hex 16) S_JSON=$(rand_hex 8)
G_PLAIN=$(rand_hex 16) GS_PLAIN=$(rand_hex 8)
G_LONG=$(rand_hex 16) GS_LONG=$(rand_hex 8)
G_GZIP=$(rand_hex 16) GS_GZIP=$(rand_hex 8)
G_PART=$(rand_hex 16) GS_PART=$(rand_hex 8)
# markers, unique per run so that nothing else in the data dir can hold them by chance
M=$(rand_hex 6)

start_server

pb_request "$T_PLAIN" "$S_PLAIN" "short" "$TMP/plain.pb" "http-plain-$M"
post "$OTLP/v1/traces" application/x-protobuf "$TMP/plain.pb"
expect_code 200 "protobuf request within the limits"
pb_request "$T_LONG" "$S_LONG" "abcdefghijklmnopqrstuvwxyz" "$TMP/long.pb" "http-long-$M"
post "$OTLP/v1/traces" application/x-protobuf "$TMP/long.pb"
expect_code 200 "protobuf request with a value over the limit"
pb_request "$T_GZIP" "$S_GZIP" "zipped" "$TMP/gz.pb" "http-gzip-$M"
gzip -c "$TMP/gz.pb" >"$TMP/gz.pb.gz"
post "$OTLP/v1/traces" application/x-protobuf "$TMP/gz.pb.gz" -H "Content-Encoding: gzip"
expect_code 200 "gzip protobuf request"
cat >"$TMP/req.json" <<EOF
{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"it-ingest"}}]},
"scopeSpans":[{"scope":{"name":"it"},"spans":[{"traceId":"$T_JSON","spanId":"$S_JSON","name":"op-json",
"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000","kind":2,
"attributes":[{"key":"app.note","value":{"stringValue":"json\\u00e9"}}]}]}]}]}
EOF
post "$OTLP/v1/traces" application/json "$TMP/req.json"
expect_code 200 "JSON request"

[ "$(note_of "$T_PLAIN")" = "short" ] || fail "plain request: app.note is not 'short'"
[ "$(note_of "$T_LONG")" = "abcdefgh" ] || fail "long value: not truncated to 8 bytes before the crash"
[ "$(note_of "$T_GZIP")" = "zipped" ] || fail "gzip request: app.note is not 'zipped'"
[ "$(note_of "$T_JSON")" = "jsoné" ] || fail "JSON request: app.note is not 'jsoné'"
ok "four requests acknowledged and readable, the long value truncated to 'abcdefgh'"

# the same over gRPC (no JSON there; instead a request with a span the decoder rejects)
pb_request "$G_PLAIN" "$GS_PLAIN" "gshort" "$TMP/gplain.pb" "grpc-plain-$M"
grpc_frame "$TMP/gplain.pb" "$TMP/gplain.grpc"
grpc_call "$TMP/gplain.grpc" "gRPC request within the limits"
pb_request "$G_LONG" "$GS_LONG" "ABCDEFGHIJKLMNOPQRSTUVWXYZ" "$TMP/glong.pb" "grpc-long-$M"
grpc_frame "$TMP/glong.pb" "$TMP/glong.grpc"
grpc_call "$TMP/glong.grpc" "gRPC request with a value over the limit"
pb_request "$G_GZIP" "$GS_GZIP" "gzipped" "$TMP/ggz.pb" "grpc-gzip-$M"
gzip -c "$TMP/ggz.pb" >"$TMP/ggz.pb.gz"
grpc_frame "$TMP/ggz.pb.gz" "$TMP/ggz.grpc" 1
grpc_call "$TMP/ggz.grpc" "gzip gRPC request" -H 'grpc-encoding: gzip'
pb_request "$G_PART" "$GS_PART" "partial" "$TMP/gpart.pb" "grpc-part-$M" \
    'spans { trace_id: "\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000" span_id: "\001\002\003\004\005\006\007\010" name: "bad-id" }'
grpc_frame "$TMP/gpart.pb" "$TMP/gpart.grpc"
grpc_call "$TMP/gpart.grpc" "gRPC request with a rejected span"
decoded=$(protoc --decode=clew.otlp.ExportTraceServiceResponse --proto_path="$PROTO_DIR" otlp.proto \
    <"$TMP/grpc_resp.pb") || fail "rejected span: the response message does not decode"
echo "$decoded" | grep -q "rejected_spans: 1" || fail "rejected span: expected rejected_spans 1, got: $decoded"

[ "$(note_of "$G_PLAIN")" = "gshort" ] || fail "plain gRPC request: app.note is not 'gshort'"
[ "$(note_of "$G_LONG")" = "ABCDEFGH" ] || fail "long gRPC value: not truncated to 8 bytes before the crash"
[ "$(note_of "$G_GZIP")" = "gzipped" ] || fail "gzip gRPC request: app.note is not 'gzipped'"
[ "$(note_of "$G_PART")" = "partial" ] || fail "gRPC request with a rejected span: app.note is not 'partial'"
ok "four gRPC calls acknowledged and readable, the long value truncated to 'ABCDEFGH'"
# every answered call has given back its budget (what the jobs held until the store called back)
inflight=$(metric 'clew_inflight_bytes')
[ "$inflight" = 0 ] || fail "the ingest budget holds $inflight bytes after every call was answered"
ok "the ingest budget is back to 0 bytes in flight"

# The WAL holds a request's own bytes exactly when nothing changed its batch, on each receiver:
# what this request's limits did decides, not counters that other requests move.
for m in http-plain http-gzip grpc-plain grpc-gzip; do
    in_wal "$m-$M" || fail "$m: the request was not logged as received (its marker is not in the WAL)"
done
for m in http-long grpc-long grpc-part; do
    ! in_wal "$m-$M" || fail "$m: the request was logged as received although its batch differs from it"
done
ok "logged as received: the unchanged protobuf requests (plain, gzip; HTTP and gRPC); re-encoded: the truncated ones and the one with a rejected span"

ALL="$T_PLAIN $T_LONG $T_GZIP $T_JSON $G_PLAIN $G_LONG $G_GZIP $G_PART"
for t in $ALL; do
    snapshot "$t" "$TMP/before-$t.json"
done

# a crash: no orderly cut into blocks, so the restart rebuilds the head from the WAL alone
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
ls "$DATA"/blocks/*.block >/dev/null 2>&1 && fail "a block was cut before the crash: the WAL replay is not tested"
start_server

[ "$(note_of "$T_PLAIN")" = "short" ] || fail "after the restart: plain request's app.note is not 'short'"
long=$(note_of "$T_LONG")
[ "$long" = "abcdefgh" ] || fail "after the restart: the long value reads '$long', not 'abcdefgh'"
[ "$(note_of "$T_GZIP")" = "zipped" ] || fail "after the restart: gzip request's app.note is not 'zipped'"
[ "$(note_of "$T_JSON")" = "jsoné" ] || fail "after the restart: JSON request's app.note is not 'jsoné'"
long=$(note_of "$G_LONG")
[ "$long" = "ABCDEFGH" ] || fail "after the restart: the long gRPC value reads '$long', not 'ABCDEFGH'"
ok "after SIGKILL and a restart (WAL replay) every span is back, the long values still truncated"
for t in $ALL; do
    snapshot "$t" "$TMP/after-$t.json"
    cmp -s "$TMP/before-$t.json" "$TMP/after-$t.json" ||
        fail "trace $t reads differently after the restart: $(diff "$TMP/before-$t.json" "$TMP/after-$t.json" | head -20)"
done
ok "all eight traces (four over HTTP, four over gRPC) read back identical after the replay"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "clew serve did not exit 0 on SIGTERM"
SERVER_PID=""
ok "clew serve exits 0 on SIGTERM"
