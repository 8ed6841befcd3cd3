#!/usr/bin/env bash
# tests/integration/test_serve_zipkin.sh - the Zipkin receiver of a real
# `clew serve`: 202 once stored, 400 with a message, 415, gzip, v1 JSON, a span
# with an invalid id dropped while the others are kept, ingest limits (dropped
# counts and truncation), and the /metrics counters of all of it.
#
# Env: CLEW_BIN. Every check prints what it checked; the first failure stops.
set -euo pipefail

: "${CLEW_BIN:?set CLEW_BIN to the clew binary}"
: "${CLEW_SOURCE_DIR:?set CLEW_SOURCE_DIR to the source tree}"
for tool in curl python3 gzip; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed" >&2; exit 1; }
done

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"
serve_init_tmpdir clew-it-zipkin
LOG="$TMP/server.log"

# ---- start the server with small limits, so they can be seen ----
ZPORT=$(free_port)
OTLP_PORT=$(free_port)
QUERY_PORT=$(free_port)
ZIPKIN="http://127.0.0.1:$ZPORT"
QUERY="http://127.0.0.1:$QUERY_PORT"
"$CLEW_BIN" serve --zipkin "127.0.0.1:$ZPORT" --otlp-http "127.0.0.1:$OTLP_PORT" \
  --otlp-grpc off --http "127.0.0.1:$QUERY_PORT" --data-dir "$TMP/data" --workers 2 \
  --span-attribute-count-limit 4 --attribute-value-length-limit 16 --span-event-count-limit 2 \
  >"$LOG" 2>&1 &
SERVER_PID=$!
serve_wait_ready "$QUERY/readyz" "$SERVER_PID" || kill -0 "$SERVER_PID" 2>/dev/null ||
  fail "the server exited at start"
grep -q "listening on 127.0.0.1:$ZPORT (Zipkin)" "$LOG" || fail "no 'listening on ... (Zipkin)' log line"
ok "server ready, Zipkin on $ZPORT"

# ---- a client/server pair (shared span) and a local child ----
T1=$(rand_hex 16); C1=$(rand_hex 8); L1=$(rand_hex 8)
cat >"$TMP/pair.json" <<EOF
[{"traceId":"$T1","id":"$C1","name":"get /cart","kind":"CLIENT","timestamp":1700000000000000,
  "duration":5000,"localEndpoint":{"serviceName":"frontend","ipv4":"10.0.0.1"},
  "remoteEndpoint":{"serviceName":"cart","port":8080},"tags":{"http.method":"GET"}},
 {"traceId":"$T1","id":"$C1","name":"get /cart","kind":"SERVER","shared":true,
  "timestamp":1700000000001000,"duration":3000,"localEndpoint":{"serviceName":"cart"},
  "tags":{"http.status_code":"200"}},
 {"traceId":"$T1","parentId":"$C1","id":"$L1","name":"load","timestamp":1700000000001500,
  "duration":1000,"localEndpoint":{"serviceName":"cart"}}]
EOF
post "$ZIPKIN/api/v2/spans" "application/json" "$TMP/pair.json"
expect_code 202 "POST /api/v2/spans"
[ ! -s "$TMP/resp" ] || fail "202 has a body: $(head -c 200 "$TMP/resp")"
ok "v2 JSON accepted: 202 with an empty body"

get "$QUERY/api/traces/$T1"
expect_code 200 "GET /api/traces/$T1"
python3 - "$TMP/resp" "$C1" "$L1" <<'EOF' || fail "Jaeger view of the pair is wrong"
import json, sys
d = json.load(open(sys.argv[1]))["data"][0]
client_id, local_id = sys.argv[2], sys.argv[3]
spans = d["spans"]
assert len(spans) == 3, f"{len(spans)} spans"
svc = {p: v["serviceName"] for p, v in d["processes"].items()}
def tag(s, k):
    return next((t["value"] for t in s["tags"] if t["key"] == k), None)
byid = {s["spanID"]: s for s in spans}
client = byid[client_id]
assert tag(client, "span.kind") == "client", client
assert svc[client["processID"]] == "frontend"
server = [s for s in spans if tag(s, "span.kind") == "server"]
assert len(server) == 1, "no server half"
server = server[0]
assert server["spanID"] != client_id, "the shared server half kept the client's id"
assert svc[server["processID"]] == "cart"
parents = [r["spanID"] for r in server.get("references", []) if r["refType"] == "CHILD_OF"]
assert parents == [client_id], f"server parent {parents}"
local = byid[local_id]
assert [r["spanID"] for r in local["references"]] == [client_id]
assert tag(client, "http.method") == "GET"
print("pair ok")
EOF
get "$QUERY/api/v3/traces/$T1"
expect_code 200 "GET /api/v3/traces/$T1"
python3 - "$TMP/resp" <<'EOF' || fail "OTLP view of the pair is wrong"
import json, sys
d = json.load(open(sys.argv[1]))["result"]["resourceSpans"]
n = sum(len(ss["spans"]) for rs in d for ss in rs["scopeSpans"])
assert n == 3, n
kinds = sorted(s.get("kind", 0) for rs in d for ss in rs["scopeSpans"] for s in ss["spans"])
assert kinds == [0, 2, 3] or kinds == [1, 2, 3], kinds
EOF
ok "pair read back through /api/traces and /api/v3/traces with parents, kinds, services"

# ---- gzip ----
T2=$(rand_hex 16); S2=$(rand_hex 8)
printf '[{"traceId":"%s","id":"%s","name":"zipped","timestamp":1700000000000000,"duration":1,"localEndpoint":{"serviceName":"gz"}}]' \
  "$T2" "$S2" | gzip -c >"$TMP/gz.json.gz"
post "$ZIPKIN/api/v2/spans" "application/json" "$TMP/gz.json.gz" -H "Content-Encoding: gzip"
expect_code 202 "gzip POST"
get "$QUERY/api/traces/$T2"
expect_code 200 "gzip trace"
grep -q "$S2" "$TMP/resp" || fail "gzip span not stored"
ok "gzip body accepted and stored"
printf 'not gzip at all' >"$TMP/bad.gz"
post "$ZIPKIN/api/v2/spans" "application/json" "$TMP/bad.gz" -H "Content-Encoding: gzip"
expect_code 400 "bad gzip"
grep -qi "gzip" "$TMP/resp" || fail "bad gzip message: $(cat "$TMP/resp")"
ok "bad gzip: 400 saying so"

# ---- malformed: 400 with what and where ----
printf '[{"traceId":"%s","id":"%s","timestamp":"soon"}]' "$(rand_hex 16)" "$(rand_hex 8)" >"$TMP/bad1.json"
post "$ZIPKIN/api/v2/spans" "application/json" "$TMP/bad1.json"
expect_code 400 "wrong field type"
grep -q '\[0\].timestamp' "$TMP/resp" || fail "400 lacks the path: $(cat "$TMP/resp")"
[[ "$(header Content-Type)" == text/plain* ]] || fail "400 Content-Type: $(header Content-Type)"
ok "wrong field type: 400 naming [0].timestamp ($(head -c 120 "$TMP/resp"))"
printf '[{"traceId": ' >"$TMP/bad2.json"
post "$ZIPKIN/api/v2/spans" "application/json" "$TMP/bad2.json"
expect_code 400 "truncated JSON"
grep -qi "byte\|column" "$TMP/resp" || fail "truncated JSON message lacks a position: $(cat "$TMP/resp")"
ok "truncated JSON: 400 with a position"

# ---- 415, 405, 404 ----
post "$ZIPKIN/api/v2/spans" "application/x-protobuf" "$TMP/pair.json"
expect_code 415 "protobuf"
grep -q "application/json" "$TMP/resp" || fail "415 does not say what is accepted"
post "$ZIPKIN/api/v2/spans" "application/x-www-form-urlencoded" "$TMP/pair.json"
expect_code 415 "form content type"
ok "other content types: 415 naming application/json"
get "$ZIPKIN/api/v2/spans"
expect_code 405 "GET /api/v2/spans"
[ "$(header Allow)" = "POST" ] || fail "405 without Allow: POST"
post "$ZIPKIN/api/v2/nothing" "application/json" "$TMP/pair.json"
expect_code 404 "unknown path"
ok "GET: 405 with Allow: POST; unknown path: 404"

# ---- v1 JSON ----
T3=$(rand_hex 8); S3=$(rand_hex 8)
cat >"$TMP/v1.json" <<EOF
[{"traceId":"$T3","id":"$S3","name":"v1op","timestamp":1700000000000000,"duration":10,
  "annotations":[{"timestamp":1700000000000000,"value":"sr","endpoint":{"serviceName":"old"}},
                 {"timestamp":1700000000000010,"value":"ss","endpoint":{"serviceName":"old"}}],
  "binaryAnnotations":[{"key":"k","value":"v","endpoint":{"serviceName":"old"}}]}]
EOF
post "$ZIPKIN/api/v1/spans" "application/json" "$TMP/v1.json"
expect_code 202 "v1 JSON"
get "$QUERY/api/traces/$T3"
expect_code 200 "v1 trace"
grep -q '"old"' "$TMP/resp" || fail "v1 span lacks its service: $(head -c 300 "$TMP/resp")"
ok "v1 JSON on /api/v1/spans accepted and stored"

# ---- an invalid id is dropped, the rest kept ----
rej_before=$(metric 'clew_receiver_spans_rejected_total{receiver="zipkin",reason="invalid_id"}')
T4=$(rand_hex 16); A4=$(rand_hex 8); B4=$(rand_hex 8)
cat >"$TMP/mixed.json" <<EOF
[{"traceId":"$T4","id":"$A4","name":"good1","timestamp":1700000000000000,"duration":1,"localEndpoint":{"serviceName":"m"}},
 {"traceId":"$T4","id":"xyz","name":"bad","timestamp":1700000000000000,"duration":1,"localEndpoint":{"serviceName":"m"}},
 {"traceId":"$T4","id":"$B4","name":"good2","timestamp":1700000000000000,"duration":1,"localEndpoint":{"serviceName":"m"}}]
EOF
post "$ZIPKIN/api/v2/spans" "application/json" "$TMP/mixed.json"
expect_code 202 "mixed batch"
get "$QUERY/api/traces/$T4"
expect_code 200 "mixed trace"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"][0]["spans"]))' "$TMP/resp")
[ "$n" = 2 ] || fail "mixed batch: $n spans stored, want 2"
rej_after=$(metric 'clew_receiver_spans_rejected_total{receiver="zipkin",reason="invalid_id"}')
[ $((rej_after - rej_before)) -eq 1 ] || fail "invalid_id counter moved by $((rej_after - rej_before))"
ok "invalid id: that span dropped and counted, the two others stored (202)"

# ---- ingest limits: dropped counts and truncation, never silent ----
lim_before=$(metric 'clew_spans_limited_total{what="span_attributes"}')
len_before=$(metric 'clew_spans_limited_total{what="attribute_value_length"}')
ev_before=$(metric 'clew_spans_limited_total{what="events"}')
T5=$(rand_hex 16); S5=$(rand_hex 8)
cat >"$TMP/limits.json" <<EOF
[{"traceId":"$T5","id":"$S5","name":"big","timestamp":1700000000000000,"duration":100,
  "localEndpoint":{"serviceName":"lim"},
  "annotations":[{"timestamp":1700000000000001,"value":"a"},{"timestamp":1700000000000002,"value":"b"},
                 {"timestamp":1700000000000003,"value":"c"}],
  "tags":{"t1":"1","t2":"2","t3":"3","t4":"4","t5":"5","t6":"0123456789abcdefghijklmnop"}}]
EOF
post "$ZIPKIN/api/v2/spans" "application/json" "$TMP/limits.json"
expect_code 202 "span over the limits"
get "$QUERY/api/v3/traces/$T5"
expect_code 200 "limited trace"
python3 - "$TMP/resp" <<'EOF' || fail "limits not applied as expected: $(head -c 600 "$TMP/resp")"
import json, sys
d = json.load(open(sys.argv[1]))["result"]["resourceSpans"]
s = d[0]["scopeSpans"][0]["spans"][0]
attrs = s.get("attributes", [])
assert len(attrs) == 4, f"{len(attrs)} attributes kept"
assert s.get("droppedAttributesCount") == 2, s.get("droppedAttributesCount")
assert len(s.get("events", [])) == 2, "events"
assert s.get("droppedEventsCount") == 1, s.get("droppedEventsCount")
for a in attrs:
    v = a["value"].get("stringValue", "")
    assert len(v) <= 16, f"{a['key']}={v!r} not truncated"
EOF
[ $(( $(metric 'clew_spans_limited_total{what="span_attributes"}') - lim_before )) -eq 1 ] ||
  fail "clew_spans_limited_total{what=span_attributes} did not move by 1"
[ $(( $(metric 'clew_spans_limited_total{what="events"}') - ev_before )) -eq 1 ] ||
  fail "clew_spans_limited_total{what=events} did not move by 1"
ok "limits: 4 attributes kept + droppedAttributesCount 2, 2 events + droppedEventsCount 1, counted"

# a long value among the first four attributes is truncated to 16 bytes
T6=$(rand_hex 16); S6=$(rand_hex 8)
printf '[{"traceId":"%s","id":"%s","name":"long","timestamp":1700000000000000,"duration":1,"localEndpoint":{"serviceName":"lim"},"tags":{"long":"%s"}}]' \
  "$T6" "$S6" "$(printf 'x%.0s' $(seq 1 100))" >"$TMP/long.json"
post "$ZIPKIN/api/v2/spans" "application/json" "$TMP/long.json"
expect_code 202 "long value"
get "$QUERY/api/v3/traces/$T6"
python3 - "$TMP/resp" <<'EOF' || fail "long value not truncated: $(head -c 400 "$TMP/resp")"
import json, sys
s = json.load(open(sys.argv[1]))["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
v = next(a["value"]["stringValue"] for a in s["attributes"] if a["key"] == "long")
assert v == "x" * 16, v
EOF
[ $(( $(metric 'clew_spans_limited_total{what="attribute_value_length"}') - len_before )) -ge 1 ] ||
  fail "clew_spans_limited_total{what=attribute_value_length} did not move"
ok "a 100-byte value is stored as its first 16 bytes, and counted"

# the OTLP/HTTP receiver applies the same limits
T7=$(rand_hex 16); S7=$(rand_hex 8)
cat >"$TMP/otlp.json" <<EOF
{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"otlp-lim"}}]},
"scopeSpans":[{"scope":{"name":"it"},"spans":[{"traceId":"$T7","spanId":"$S7","name":"otlp-big",
"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000","droppedAttributesCount":1,
"attributes":[{"key":"a1","value":{"stringValue":"$(printf 'y%.0s' $(seq 1 40))"}},{"key":"a2","value":{"intValue":2}},
{"key":"a3","value":{"intValue":3}},{"key":"a4","value":{"intValue":4}},{"key":"a5","value":{"intValue":5}}]}]}]}]}
EOF
post "http://127.0.0.1:$OTLP_PORT/v1/traces" "application/json" "$TMP/otlp.json"
expect_code 200 "OTLP/JSON span over the limits"
get "$QUERY/api/v3/traces/$T7"
expect_code 200 "OTLP limited trace"
python3 - "$TMP/resp" <<'EOF' || fail "OTLP/HTTP limits not applied: $(head -c 600 "$TMP/resp")"
import json, sys
s = json.load(open(sys.argv[1]))["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
attrs = s["attributes"]
assert [a["key"] for a in attrs] == ["a1", "a2", "a3", "a4"], attrs
assert s.get("droppedAttributesCount") == 1 + 1, s.get("droppedAttributesCount")
assert attrs[0]["value"]["stringValue"] == "y" * 16
EOF
ok "OTLP/HTTP: the same limits (4 attributes kept, dropped 1 + 1, value cut to 16 bytes)"

# ---- /metrics for the receiver ----
recv=$(metric 'clew_spans_received_total{receiver="zipkin",format="json"}')
acc=$(metric 'clew_spans_accepted_total{receiver="zipkin"}')
c202=$(metric 'clew_requests_total{receiver="zipkin",code="202"}')
c400=$(metric 'clew_requests_total{receiver="zipkin",code="400"}')
c415=$(metric 'clew_requests_total{receiver="zipkin",code="415"}')
bytes=$(metric 'clew_received_bytes_total{receiver="zipkin"}')
durs=$(metric 'clew_request_duration_seconds_count{receiver="zipkin"}')
# stored: 3 (pair) + 1 (gzip) + 1 (v1: sr/ss is one server span) + 2 (mixed) + 1 + 1 (limits)
[ "$acc" -eq 9 ] || fail "clew_spans_accepted_total{receiver=zipkin} = $acc, want 9"
[ "$recv" -eq 10 ] || fail "clew_spans_received_total{receiver=zipkin} = $recv, want 10 (9 + 1 invalid)"
[ "$c202" -eq 6 ] || fail "202 count $c202, want 6"
[ "$c400" -eq 3 ] || fail "400 count $c400, want 3"
[ "$c415" -eq 2 ] || fail "415 count $c415, want 2"
[ "$bytes" -gt 1000 ] || fail "clew_received_bytes_total{receiver=zipkin} = $bytes"
[ "$durs" -ge 11 ] || fail "duration histogram count $durs"
ok "/metrics: received $recv, accepted $acc, 202 x$c202, 400 x$c400, 415 x$c415, $bytes bytes, $durs timed"
open=$(metric "clew_http_connections{listener=\"127.0.0.1:$ZPORT\"}")
[ "$open" -eq 0 ] || fail "clew_http_connections for the Zipkin listener is $open after every client left"
curl -s "$QUERY/metrics" | grep -q '^clew_worker_queue_depth ' || fail "no clew_worker_queue_depth"
ok "/metrics: connection gauge back to 0, queue depth present"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "server exit code $? on SIGTERM"
SERVER_PID=""
ok "clean exit on SIGTERM"
echo "all Zipkin receiver checks passed"
