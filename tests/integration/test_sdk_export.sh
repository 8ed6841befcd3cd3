#!/usr/bin/env bash
# libclew against a real `clew serve`: runs examples/hello (built with the SDK's shared library)
# with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, http/json, http/protobuf + gzip, grpc and grpc +
# gzip (OTEL_EXPORTER_OTLP_COMPRESSION), and checks through GET /api/v3/traces/{id} that each run's three spans arrived whole: parents, kinds,
# attributes, resource service.name, the error status and the exception event. Also checks that
# `clew trace ID --server ...` exits 0 and names the error span.
set -euo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
: "${CLEW_BUILD_DIR:?}"
: "${CLEW_SOURCE_DIR:?}"
hello="$CLEW_BUILD_DIR/examples/hello"

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"
[ -x "$hello" ] || fail "$hello not built (target hello in examples/CMakeLists.txt)"
command -v python3 >/dev/null 2>&1 || fail "python3 not found; run scripts/install-deps.sh"

serve_init_workdir

launch_server() {
    otlp_port=$(free_port)
    grpc_port=$(free_port)
    http_port=$(free_port)
    "$CLEW_BIN" serve --otlp-grpc "127.0.0.1:$grpc_port" --zipkin off \
        --otlp-http "127.0.0.1:$otlp_port" --http "127.0.0.1:$http_port" \
        --data-dir "$work/data" >"$work/server.log" 2>&1 &
    server_pid=$!
}
serve_start_retrying launch_server || fail "clew serve did not start"

# run_hello NAME ENDPOINT PROTOCOL COMPRESSION -> the trace id in $work/NAME.id
run_hello() {
    local name=$1 endpoint=$2 proto=$3 comp=$4
    env -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT -u OTEL_TRACES_EXPORTER -u OTEL_SDK_DISABLED \
        OTEL_EXPORTER_OTLP_ENDPOINT="$endpoint" OTEL_SERVICE_NAME=hello \
        OTEL_EXPORTER_OTLP_PROTOCOL="$proto" OTEL_EXPORTER_OTLP_COMPRESSION="$comp" \
        OTEL_TRACES_SAMPLER=always_on OTEL_PROPAGATORS=tracecontext \
        "$hello" >"$work/$name.id" 2>"$work/$name.err" ||
        fail "$name: hello exited non-zero: $(cat "$work/$name.err")"
    grep -Eq '^[0-9a-f]{32}$' "$work/$name.id" || fail "$name: no trace id printed: $(cat "$work/$name.id")"
}

# check_trace NAME: the trace of run NAME is complete and correct
check_trace() {
    local name=$1 id
    id=$(cat "$work/$name.id")
    local got=0
    for _ in $(seq 1 50); do
        if curl -fsS -o "$work/$name.json" "http://127.0.0.1:$http_port/api/v3/traces/$id" 2>/dev/null; then
            got=1
            break
        fi
        sleep 0.1
    done
    [ $got -eq 1 ] || fail "$name: GET /api/v3/traces/$id never answered 200"
    python3 - "$work/$name.json" "$id" "$name" <<'PY' || fail "$name: trace content is wrong"
import json, sys
doc = json.load(open(sys.argv[1]))
tid, name = sys.argv[2], sys.argv[3]

def val(v):
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    return v

def attrs(lst):
    return {a["key"]: val(a["value"]) for a in lst or []}

spans = {}
for rs in doc["result"]["resourceSpans"]:
    res = attrs(rs.get("resource", {}).get("attributes"))
    assert res.get("service.name") == "hello", res
    assert res.get("telemetry.sdk.name") == "clew", res
    for ss in rs["scopeSpans"]:
        assert ss["scope"]["name"] == "hello", ss["scope"]
        for s in ss["spans"]:
            assert s["traceId"].lower() == tid, s["traceId"]
            spans[s["name"]] = s
assert sorted(spans) == ["GET /hello", "GET cache", "SELECT greetings"], sorted(spans)
srv, db, cache = spans["GET /hello"], spans["SELECT greetings"], spans["GET cache"]
assert not srv.get("parentSpanId"), srv.get("parentSpanId")
assert db["parentSpanId"] == srv["spanId"] and cache["parentSpanId"] == srv["spanId"]
assert srv["kind"] == 2 and db["kind"] == 3 and cache["kind"] == 3, (srv["kind"], db["kind"])
a = attrs(srv["attributes"])
assert a == {"http.request.method": "GET", "url.path": "/hello",
             "http.response.status_code": 200, "hello.cached": False}, a
a = attrs(db["attributes"])
assert a == {"db.system": "postgresql", "hello.rows": 1.0}, a
assert attrs(cache["attributes"]) == {"server.address": "cache.internal"}
assert cache["status"]["code"] == 2 and cache["status"]["message"] == "cache unavailable", cache["status"]
assert srv.get("status", {}).get("code", 0) == 0 and db.get("status", {}).get("code", 0) == 0
ev = cache["events"]
assert len(ev) == 1 and ev[0]["name"] == "exception", ev
assert attrs(ev[0]["attributes"]) == {"exception.type": "ConnectionRefused",
                                      "exception.message": "cache.internal:6379 refused"}, ev
for s in spans.values():
    assert int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) > 0
assert int(srv["startTimeUnixNano"]) <= int(db["startTimeUnixNano"])
assert int(cache["endTimeUnixNano"]) <= int(srv["endTimeUnixNano"])
PY
    "$CLEW_BIN" trace "$id" --server "http://127.0.0.1:$http_port" >"$work/$name.trace" 2>&1 ||
        fail "$name: clew trace $id exited non-zero: $(cat "$work/$name.trace")"
    grep -q "GET cache" "$work/$name.trace" || fail "$name: clew trace output lacks the error span"
    ok "$name: trace $id arrived whole"
}

run_hello protobuf "http://127.0.0.1:$otlp_port" http/protobuf none
check_trace protobuf
run_hello json "http://127.0.0.1:$otlp_port/" http/json none
check_trace json
run_hello gzip "http://127.0.0.1:$otlp_port" http/protobuf gzip
check_trace gzip
run_hello grpc "http://127.0.0.1:$grpc_port" grpc none
check_trace grpc
run_hello grpc_gzip "http://127.0.0.1:$grpc_port" grpc gzip
check_trace grpc_gzip
# gRPC at the HTTP/1.1-only OTLP/HTTP port: the export fails, and hello says so (exit 1, a
# diagnostic, no hang) instead of pretending the spans arrived
rc=0
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp_port" OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    OTEL_EXPORTER_OTLP_TIMEOUT=3000 OTEL_TRACES_EXPORTER=otlp OTEL_SERVICE_NAME=hello \
    timeout 20 "$hello" >"$work/wrong.id" 2>"$work/wrong.err" || rc=$?
[ $rc -eq 1 ] || fail "gRPC to an HTTP/1.1 port: hello exited $rc, want 1: $(cat "$work/wrong.err")"
grep -q "gRPC\|failed" "$work/wrong.err" || fail "gRPC to an HTTP/1.1 port: no diagnostic"
echo "ok: gRPC against an HTTP/1.1 port fails cleanly"
for n in protobuf json gzip grpc grpc_gzip; do
    [ ! -s "$work/$n.err" ] || fail "$n: hello wrote diagnostics: $(cat "$work/$n.err")"
done
echo "all sdk export checks passed"
