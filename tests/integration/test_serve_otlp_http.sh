#!/usr/bin/env bash
# tests/integration/test_serve_otlp_http.sh - a real `clew serve` on loopback,
# fed real OTLP/HTTP requests (JSON, protobuf built by Debian's protoc, gzip,
# chunked), checked through its query API, /metrics, and its error answers.
#
# Env: CLEW_BIN (the clew binary), CLEW_SOURCE_DIR (for src/codec/otlp.proto).
# Every check prints what it checked; the first failure stops the script.
set -euo pipefail

: "${CLEW_BIN:?set CLEW_BIN to the clew binary}"
: "${CLEW_SOURCE_DIR:?set CLEW_SOURCE_DIR to the source tree}"
PROTO_DIR="$CLEW_SOURCE_DIR/src/codec"
for tool in curl protoc python3 gzip; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed" >&2; exit 1; }
done

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"
serve_init_tmpdir clew-it-otlp-http
LOG="$TMP/server.log"

json_request() { # json_request TRACE_ID SPAN_ID NAME -> stdout
  cat <<EOF
{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"it-json"}}]},
"scopeSpans":[{"scope":{"name":"it","version":"1"},"spans":[{"traceId":"$1","spanId":"$2","name":"$3",
"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000","kind":2,
"attributes":[{"key":"http.status_code","value":{"intValue":201}}],"flags":257}]}]}]}
EOF
}

pb_request() { # pb_request TRACE_ID SPAN_ID NAME FILE
  cat >"$TMP/req.txt" <<EOF
resource_spans {
  resource { attributes { key: "service.name" value { string_value: "it-protobuf" } } }
  scope_spans {
    scope { name: "it" }
    spans {
      trace_id: "$(hex_to_proto "$1")"
      span_id: "$(hex_to_proto "$2")"
      name: "$3"
      kind: SPAN_KIND_CLIENT
      start_time_unix_nano: 1700000000000000000
      end_time_unix_nano: 1700000000500000000
    }
  }
}
EOF
  protoc --encode=clew.otlp.ExportTraceServiceRequest --proto_path="$PROTO_DIR" otlp.proto \
    <"$TMP/req.txt" >"$4" || fail "protoc could not encode the test request"
}

# expect_trace TRACE_ID SPAN_ID WHAT: both query APIs return the span
expect_trace() {
  get "$QUERY/api/traces/$1"
  expect_code 200 "GET /api/traces/$1 ($3)"
  grep -qi "$2" "$TMP/resp" || fail "GET /api/traces/$1 ($3) lacks span $2: $(head -c 400 "$TMP/resp")"
  get "$QUERY/api/v3/traces/$1"
  expect_code 200 "GET /api/v3/traces/$1 ($3)"
  grep -qi "$2" "$TMP/resp" || fail "GET /api/v3/traces/$1 ($3) lacks span $2: $(head -c 400 "$TMP/resp")"
  ok "$3: trace $1 readable via /api/traces and /api/v3/traces"
}

# metric NAME_WITH_LABELS: prints its value (0 when absent)

# ---- a bad config file is refused with file:line, exit 2 ----
printf 'workers: 2\n# comment\nmax_memory: 12 potatoes\n' >"$TMP/bad.yaml"
set +e
"$CLEW_BIN" serve --config "$TMP/bad.yaml" --data-dir "$TMP/data" 2>"$TMP/bad.err" >/dev/null
rc=$?
set -e
[ $rc -eq 2 ] || fail "bad config: expected exit 2, got $rc"
grep -q "bad.yaml:3: max_memory: '12 potatoes' is not a size" "$TMP/bad.err" ||
  fail "bad config: stderr lacks file:line: $(cat "$TMP/bad.err")"
ok "bad config file refused with file:line and exit 2"

set +e
"$CLEW_BIN" serve --no-such-option 1 2>"$TMP/usage.err" >/dev/null
rc=$?
set -e
[ $rc -eq 2 ] && grep -q '^usage: clew serve' "$TMP/usage.err" ||
  fail "unknown option: expected exit 2 and a usage line, got $rc: $(cat "$TMP/usage.err")"
ok "unknown option: usage line on stderr, exit 2"

# ---- start the server ----
OTLP_PORT=$(free_port)
QUERY_PORT=$(free_port)
OTLP="http://127.0.0.1:$OTLP_PORT"
QUERY="http://127.0.0.1:$QUERY_PORT"
MAX_BODY=2048
"$CLEW_BIN" serve --otlp-grpc off --zipkin off --otlp-http "127.0.0.1:$OTLP_PORT" --http "127.0.0.1:$QUERY_PORT" \
  --data-dir "$TMP/data" --max-request-body "$MAX_BODY" --workers 2 >"$LOG" 2>&1 &
SERVER_PID=$!
serve_wait_ready "$QUERY/readyz" "$SERVER_PID" || kill -0 "$SERVER_PID" 2>/dev/null ||
  fail "the server exited at start"
get "$QUERY/readyz"
expect_code 200 "/readyz"
grep -q "listening on 127.0.0.1:$OTLP_PORT (OTLP/HTTP)" "$LOG" || fail "no 'listening on' log line"
ok "server ready on $OTLP_PORT (OTLP/HTTP) and $QUERY_PORT (query)"

get "$QUERY/healthz"
expect_code 200 "/healthz"
grep -q '^ok' "$TMP/resp" || fail "/healthz body is not ok"
ok "/healthz answers 200 ok"

accepted_before=$(metric 'clew_spans_accepted_total{receiver="otlp_http"}')
ok200_before=$(metric 'clew_requests_total{receiver="otlp_http",code="200"}')

# ---- JSON ----
T1=$(rand_hex 16); S1=$(rand_hex 8)
json_request "$T1" "$S1" "json-op" >"$TMP/t1.json"
post "$OTLP/v1/traces" "application/json; charset=utf-8" "$TMP/t1.json"
expect_code 200 "JSON export"
[ "$(header Content-Type)" = "application/json" ] || fail "JSON export: Content-Type $(header Content-Type)"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit("partialSuccess" in d)' "$TMP/resp" ||
  fail "JSON export: unexpected partialSuccess in $(cat "$TMP/resp")"
ok "JSON export accepted (200, no partialSuccess)"
expect_trace "$T1" "$S1" "JSON"

# ---- protobuf ----
T2=$(rand_hex 16); S2=$(rand_hex 8)
pb_request "$T2" "$S2" "pb-op" "$TMP/t2.pb"
post "$OTLP/v1/traces" "application/x-protobuf" "$TMP/t2.pb"
expect_code 200 "protobuf export"
[ "$(header Content-Type)" = "application/x-protobuf" ] || fail "protobuf export: Content-Type $(header Content-Type)"
decoded=$(protoc --decode=clew.otlp.ExportTraceServiceResponse --proto_path="$PROTO_DIR" otlp.proto <"$TMP/resp") ||
  fail "protobuf export: the response is not an ExportTraceServiceResponse"
[ -z "$decoded" ] || fail "protobuf export: expected an empty response, got: $decoded"
ok "protobuf export accepted (200, empty ExportTraceServiceResponse)"
expect_trace "$T2" "$S2" "protobuf"

T2b=$(rand_hex 16); S2b=$(rand_hex 8)
pb_request "$T2b" "$S2b" "pb-op2" "$TMP/t2b.pb"
post "$OTLP/v1/traces" "application/protobuf" "$TMP/t2b.pb"
expect_code 200 "protobuf export as application/protobuf"
ok "application/protobuf accepted too"

# ---- gzip ----
T3=$(rand_hex 16); S3=$(rand_hex 8)
json_request "$T3" "$S3" "gzip-op" | gzip -c >"$TMP/t3.json.gz"
post "$OTLP/v1/traces" "application/json" "$TMP/t3.json.gz" -H "Content-Encoding: gzip"
expect_code 200 "gzip JSON export"
ok "gzip body accepted"
expect_trace "$T3" "$S3" "gzip"

# ---- chunked (what OpenTelemetry JS sends: no Content-Length) ----
T4=$(rand_hex 16); S4=$(rand_hex 8)
pb_request "$T4" "$S4" "chunked-op" "$TMP/t4.pb"
post "$OTLP/v1/traces" "application/x-protobuf" "$TMP/t4.pb" -H "Transfer-Encoding: chunked"
expect_code 200 "chunked protobuf export"
ok "chunked body accepted"
expect_trace "$T4" "$S4" "chunked"

T5=$(rand_hex 16); S5=$(rand_hex 8)
json_request "$T5" "$S5" "chunked-gzip" | gzip -c >"$TMP/t5.json.gz"
post "$OTLP/v1/traces" "application/json" "$TMP/t5.json.gz" -H "Transfer-Encoding: chunked" \
  -H "Content-Encoding: gzip"
expect_code 200 "chunked gzip JSON export"
expect_trace "$T5" "$S5" "chunked+gzip"

# ---- keep-alive: two requests on one connection ----
T6=$(rand_hex 16); S6=$(rand_hex 8); T7=$(rand_hex 16); S7=$(rand_hex 8)
json_request "$T6" "$S6" "ka1" >"$TMP/t6.json"
json_request "$T7" "$S7" "ka2" >"$TMP/t7.json"
curl -s -v -o /dev/null -H 'Content-Type: application/json' \
  --data-binary @"$TMP/t6.json" "$OTLP/v1/traces" --next -o /dev/null -H 'Content-Type: application/json' \
  --data-binary @"$TMP/t7.json" "$OTLP/v1/traces" 2>"$TMP/ka.err" || fail "keep-alive: curl failed"
grep -qi 're-using existing connection\|reusing existing connection' "$TMP/ka.err" ||
  fail "keep-alive: the second request did not reuse the connection"
expect_trace "$T7" "$S7" "keep-alive"

# ---- partial success: one span with an invalid (all-zero) id, one valid ----
T8=$(rand_hex 16); S8=$(rand_hex 8)
cat >"$TMP/t8.json" <<EOF
{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"it-partial"}}]},
"scopeSpans":[{"scope":{"name":"it"},"spans":[
{"traceId":"$T8","spanId":"0000000000000000","name":"bad-id","startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000"},
{"traceId":"$T8","spanId":"$S8","name":"good","startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000"}]}]}]}
EOF
post "$OTLP/v1/traces" "application/json" "$TMP/t8.json"
expect_code 200 "partial success"
python3 - "$TMP/resp" <<'EOF' || fail "partial success: bad response $(cat "$TMP/resp")"
import json, sys
d = json.load(open(sys.argv[1]))
ps = d["partialSuccess"]
assert int(ps["rejectedSpans"]) == 1, ps
assert ps.get("errorMessage"), ps
EOF
ok "partial success: rejectedSpans 1 with a message"
expect_trace "$T8" "$S8" "partial success (valid span kept)"

# ---- 415 ----
echo hello >"$TMP/plain.txt"
post "$OTLP/v1/traces" "text/plain" "$TMP/plain.txt"
expect_code 415 "text/plain"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["code"]==3 and "Content-Type" in d["message"]' \
  "$TMP/resp" || fail "415: body is not a Status naming Content-Type: $(cat "$TMP/resp")"
ok "415 for text/plain with a Status body"
post "$OTLP/v1/traces" "application/json" "$TMP/t1.json" -H "Content-Encoding: br"
expect_code 415 "Content-Encoding br"
ok "415 for Content-Encoding br"

# ---- 400: malformed protobuf and JSON, Status bodies with a message ----
printf '\x0a\xff\xff\xff\xff\x0f' >"$TMP/bad.pb"
post "$OTLP/v1/traces" "application/x-protobuf" "$TMP/bad.pb"
expect_code 400 "malformed protobuf"
status=$(protoc --decode=clew.otlp.RpcStatus --proto_path="$PROTO_DIR" otlp.proto <"$TMP/resp") ||
  fail "malformed protobuf: the body is not a google.rpc.Status"
echo "$status" | grep -q '^code: 3' || fail "malformed protobuf: Status code is not 3: $status"
echo "$status" | grep -q '^message: "..*"' || fail "malformed protobuf: Status has no message: $status"
ok "400 for malformed protobuf, Status: $(echo "$status" | grep message | head -c 150)"

printf '{"resourceSpans": [ {"resource": ' >"$TMP/bad.json"
post "$OTLP/v1/traces" "application/json" "$TMP/bad.json"
expect_code 400 "malformed JSON"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["code"]==3 and len(d["message"])>10, d' \
  "$TMP/resp" || fail "malformed JSON: body is not a Status with a message: $(cat "$TMP/resp")"
ok "400 for malformed JSON, Status: $(head -c 150 "$TMP/resp")"

printf 'x' | gzip -c | head -c 12 >"$TMP/trunc.gz"
post "$OTLP/v1/traces" "application/json" "$TMP/trunc.gz" -H "Content-Encoding: gzip"
expect_code 400 "truncated gzip"
ok "400 for a truncated gzip body"

# ---- 413: Content-Length, chunked, gzip bomb ----
head -c $((MAX_BODY * 4)) /dev/zero | tr '\0' ' ' >"$TMP/big.json"
post "$OTLP/v1/traces" "application/json" "$TMP/big.json"
expect_code 413 "body over --max-request-body (Content-Length)"
ok "413 for a body over the limit with Content-Length"
post "$OTLP/v1/traces" "application/json" "$TMP/big.json" -H "Transfer-Encoding: chunked"
expect_code 413 "body over --max-request-body (chunked)"
ok "413 for a chunked body over the limit"
head -c 1500000 /dev/zero | gzip -9 -c >"$TMP/bomb.gz"
[ "$(stat -c %s "$TMP/bomb.gz")" -lt "$MAX_BODY" ] || fail "the gzip bomb is not small"
post "$OTLP/v1/traces" "application/json" "$TMP/bomb.gz" -H "Content-Encoding: gzip"
expect_code 413 "gzip bomb"
grep -q 'gzip' "$TMP/resp" || fail "gzip bomb: the message does not say why: $(cat "$TMP/resp")"
ok "413 for a gzip bomb ($(stat -c %s "$TMP/bomb.gz") bytes expanding to 1.5MB)"

# ---- 405, 404 ----
get "$OTLP/v1/traces"
expect_code 405 "GET /v1/traces"
[ "$(header Allow)" = "POST" ] || fail "405 without Allow: POST"
ok "405 for GET /v1/traces with Allow: POST"
get "$QUERY/no/such/thing"
expect_code 404 "unknown query path"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/resp" || fail "404 body is not JSON"
ok "404 with a JSON message for an unknown path"

# ---- /metrics moved ----
get "$QUERY/metrics"
expect_code 200 "/metrics"
for name in clew_spans_received_total clew_spans_rejected_total clew_request_duration_seconds_bucket \
  clew_inflight_bytes clew_budget_bytes clew_store_spans clew_store_traces \
  clew_store_evicted_traces_total clew_store_duplicate_spans_total process_resident_memory_bytes; do
  grep -q "^$name" "$TMP/resp" || fail "/metrics lacks $name"
done
accepted_after=$(metric 'clew_spans_accepted_total{receiver="otlp_http"}')
ok200_after=$(metric 'clew_requests_total{receiver="otlp_http",code="200"}')
rejected=$(metric 'clew_spans_rejected_total{reason="invalid_id"}')
pb_received=$(metric 'clew_spans_received_total{receiver="otlp_http",format="protobuf"}')
[ $((accepted_after - accepted_before)) -ge 9 ] ||
  fail "/metrics: spans accepted moved from $accepted_before to $accepted_after only"
[ $((ok200_after - ok200_before)) -ge 9 ] ||
  fail "/metrics: 200 answers moved from $ok200_before to $ok200_after only"
[ "$rejected" -ge 1 ] || fail "/metrics: no invalid_id rejection counted"
[ "$pb_received" -ge 3 ] || fail "/metrics: protobuf spans received is $pb_received"
c400=$(metric 'clew_requests_total{receiver="otlp_http",code="400"}')
[ "$c400" -ge 3 ] || fail "/metrics: 400 answers counted $c400"
ok "/metrics counters moved (accepted +$((accepted_after - accepted_before)), invalid_id $rejected, 400s $c400)"

# ---- a second server on the same data dir is refused ----
set +e
"$CLEW_BIN" serve --otlp-grpc off --zipkin off --otlp-http "127.0.0.1:$(free_port)" --http "127.0.0.1:$(free_port)" \
  --data-dir "$TMP/data" 2>"$TMP/second.err" >/dev/null
rc=$?
set -e
[ $rc -eq 3 ] || fail "second server: expected exit 3, got $rc: $(cat "$TMP/second.err")"
grep -q "data dir $TMP/data is in use by another clew serve (pid $SERVER_PID)" "$TMP/second.err" ||
  fail "second server: message: $(cat "$TMP/second.err")"
ok "a second server on the same data dir is refused (exit 3, names pid $SERVER_PID)"

# ---- SIGTERM: exit 0 ----
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
rc=$?
set -e
SERVER_PID=""
[ $rc -eq 0 ] || fail "SIGTERM: expected exit 0, got $rc"
if grep -q 'Sanitizer' "$LOG"; then
  fail "the sanitizers reported a problem"
fi
ok "SIGTERM: clean exit 0"
echo "all checks passed"
