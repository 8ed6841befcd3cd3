#!/usr/bin/env bash
# tests/integration/test_ingest_path.sh - what the OTLP/HTTP receiver hands the embedded store
# (the request's own protobuf bytes, the batch held until the WAL write completes) comes back
# right after a crash: a real `clew serve` with a short --attribute-value-length-limit takes a
# plain protobuf request (logged as received), one whose value the limit truncates (so it must
# be logged truncated, never as received), a gzip one and a JSON one; it is killed with
# SIGKILL (no cut into blocks: the restart replays the WAL) and restarted on the same data dir.
# Every span must be back, the long value truncated exactly as it was answered before.
#
# Env: CLEW_BIN (the clew binary), CLEW_SOURCE_DIR (for src/codec/otlp.proto).
set -euo pipefail

: "${CLEW_BIN:?set CLEW_BIN to the clew binary}"
: "${CLEW_SOURCE_DIR:?set CLEW_SOURCE_DIR to the source tree}"
PROTO_DIR="$CLEW_SOURCE_DIR/src/codec"
for tool in curl protoc python3 gzip; do
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
        OTLP="http://127.0.0.1:$OTLP_PORT"
        QUERY="http://127.0.0.1:$QUERY_PORT"
        "$CLEW_BIN" serve --otlp-grpc off --zipkin off --otlp-http "127.0.0.1:$OTLP_PORT" \
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

# pb_request TRACE_ID SPAN_ID VALUE FILE: one span with attribute app.note=VALUE
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
  }
}
EOF
    protoc --encode=clew.otlp.ExportTraceServiceRequest --proto_path="$PROTO_DIR" otlp.proto \
        <"$TMP/req.txt" >"$4" || fail "protoc could not encode the test request"
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

start_server

pb_request "$T_PLAIN" "$S_PLAIN" "short" "$TMP/plain.pb"
post "$OTLP/v1/traces" application/x-protobuf "$TMP/plain.pb"
expect_code 200 "protobuf request within the limits"
pb_request "$T_LONG" "$S_LONG" "abcdefghijklmnopqrstuvwxyz" "$TMP/long.pb"
post "$OTLP/v1/traces" application/x-protobuf "$TMP/long.pb"
expect_code 200 "protobuf request with a value over the limit"
pb_request "$T_GZIP" "$S_GZIP" "zipped" "$TMP/gz.pb"
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
ok "after SIGKILL and a restart (WAL replay) every span is back, the long value still truncated"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "clew serve did not exit 0 on SIGTERM"
SERVER_PID=""
ok "clew serve exits 0 on SIGTERM"
