#!/usr/bin/env bash
# Interop: real Zipkin clients send to `clew serve`'s Zipkin receiver, and every trace is read back
# through the Jaeger v1 (/api/traces/{id}) and v3 (/api/v3/traces/{id}) query APIs:
#   - zipkin-js + zipkin-transport-http (npm, pinned in zipkin_js/package*.json): an RPC as a
#     client span and its server half joined to the same span id (the shared-span model), plus a
#     local span inside the server;
#   - Debian's python3-py-zipkin with a small HTTP transport: nested spans (server root, local
#     child, client grandchild) as JSON v2.
# Checks span counts, parent links, kinds, tags and service names. Prints "N passed, M failed".
#
# Needs node, npm and python3-py-zipkin (scripts/install-deps.sh installs them). The npm packages
# are installed once into $CLEW_BUILD_DIR/interop-zipkin-node and reused while the package files
# are unchanged.
set -uo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
: "${CLEW_SOURCE_DIR:?}"
: "${CLEW_BUILD_DIR:?}"
here="$CLEW_SOURCE_DIR/tests/interop/zipkin_js"

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"
command -v node >/dev/null 2>&1 || fail "node not found; run scripts/install-deps.sh"
command -v npm >/dev/null 2>&1 || fail "npm not found; run scripts/install-deps.sh"
command -v curl >/dev/null 2>&1 || fail "curl not found; run scripts/install-deps.sh"
# py_zipkin comes from Debian (python3-py-zipkin): it is importable by Debian's python3, which a
# python3 earlier on PATH (pyenv, venv) may not see
PY=""
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import py_zipkin' 2>/dev/null; then
        PY=$candidate
        break
    fi
done
[ -n "$PY" ] || fail "python3 cannot import py_zipkin; run scripts/install-deps.sh (python3-py-zipkin)"

# ---- npm packages, cached per build dir ----
cache="$CLEW_BUILD_DIR/interop-zipkin-node"
npm_install_cached "$here" "$cache" "zipkin and zipkin-transport-http"
cp "$here/send.mjs" "$cache/"

# ---- the server ----
# no grace at exit: the test stops the server itself, one left over only needs to go
SERVE_STOP_TENTHS=0
serve_init_workdir

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
zipkin_port=$(free_port)
http_port=$(free_port)
"$CLEW_BIN" serve --zipkin "127.0.0.1:$zipkin_port" --otlp-http 127.0.0.1:0 --otlp-grpc off \
    --http "127.0.0.1:$http_port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$http_port/readyz" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "clew serve exited at start"; }
    sleep 0.1
done
zipkin="http://127.0.0.1:$zipkin_port"
query="http://127.0.0.1:$http_port"
echo "clew serve: Zipkin on $zipkin, query API on $query"

passed=0
failed=0
result() { # result STATUS WHAT
    if [ "$1" -eq 0 ]; then
        echo "ok: $2"
        passed=$((passed + 1))
    else
        echo "FAIL: $2" >&2
        failed=$((failed + 1))
    fi
}

# ---- zipkin-js ----
(cd "$cache" && node send.mjs "$zipkin" "$work/js.json")
result $? "zipkin-js + zipkin-transport-http posted 3 traces, answered 202"
if [ -s "$work/js.json" ]; then
    "$PY" - "$query" "$work/js.json" <<'EOF'
import json, sys, urllib.request
query, path = sys.argv[1:3]
bad = 0
def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)
for exp in json.load(open(path)):
    tid, cid, lid = exp["traceId"], exp["clientId"], exp["localId"]
    try:
        d = get(f"{query}/api/traces/{tid}")["data"][0]
        svc = {p: v["serviceName"] for p, v in d["processes"].items()}
        tag = lambda s, k: next((t["value"] for t in s["tags"] if t["key"] == k), None)
        parent = lambda s: [r["spanID"] for r in s["references"] if r["refType"] == "CHILD_OF"]
        spans = d["spans"]
        assert len(spans) == 3, f"{len(spans)} spans"
        byid = {s["spanID"]: s for s in spans}
        client = byid[cid]
        assert tag(client, "span.kind") == "client" and svc[client["processID"]] == "js-frontend"
        assert parent(client) == [], "client span has a parent"
        assert tag(client, "http.path") == exp["path"]
        server = [s for s in spans if tag(s, "span.kind") == "server"]
        assert len(server) == 1, "no server half"
        server = server[0]
        assert server["spanID"] != cid, "server half stored under the client's id"
        assert parent(server) == [cid], f"server parent {parent(server)}"
        assert svc[server["processID"]] == "js-backend"
        assert tag(server, "http.status_code") == "200"
        local = byid[lid]
        assert local["operationName"] == "db-query" and svc[local["processID"]] == "js-backend"
        assert tag(local, "db.rows") == exp["rows"]
        # zipkin-js reports the local span under the shared id, the client's
        assert parent(local) == [cid], f"local parent {parent(local)}"
        v3 = get(f"{query}/api/v3/traces/{tid}")["result"]["resourceSpans"]
        kinds = {}
        services = set()
        for rs in v3:
            name = next(a["value"]["stringValue"] for a in rs["resource"]["attributes"]
                        if a["key"] == "service.name")
            services.add(name)
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    kinds[s["spanId"]] = s.get("kind", 0)
                    if s["spanId"] == lid:
                        assert s.get("parentSpanId") == cid
        assert services == {"js-frontend", "js-backend"}, services
        assert kinds[cid] == 3 and kinds[server["spanID"]] == 2, kinds
    except Exception as e:
        bad += 1
        print(f"zipkin-js trace {tid}: {type(e).__name__}: {e}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
    result $? "zipkin-js traces complete via /api/traces and /api/v3/traces (shared server half, local child, kinds, tags, services)"
else
    result 1 "zipkin-js traces read back (nothing was sent)"
fi

# ---- py_zipkin ----
"$PY" - "$zipkin" "$query" <<'EOF'
import json, sys, urllib.request
from py_zipkin import Encoding, Kind
from py_zipkin.transport import BaseTransportHandler
from py_zipkin.zipkin import zipkin_span

zipkin, query = sys.argv[1:3]

class HttpTransport(BaseTransportHandler):
    """POSTs each encoded batch to /api/v2/spans, as py_zipkin leaves transports to the user."""
    def __init__(self):
        self.codes = []
    def get_max_payload_bytes(self):
        return None
    def send(self, payload):
        if isinstance(payload, str):  # the JSON encodings hand over text
            payload = payload.encode("utf-8")
        req = urllib.request.Request(zipkin + "/api/v2/spans", data=payload, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            self.codes.append(r.status)

transport = HttpTransport()
expected = []
for i in range(3):
    with zipkin_span(service_name="py-api", span_name="handle-order", transport_handler=transport,
                     sample_rate=100.0, encoding=Encoding.V2_JSON, kind=Kind.SERVER,
                     use_128bit_trace_id=True, binary_annotations={"order.id": str(i)}) as root:
        with zipkin_span(service_name="py-api", span_name="price", kind=Kind.LOCAL) as child:
            with zipkin_span(service_name="py-api", span_name="call-db", kind=Kind.CLIENT,
                             binary_annotations={"db.system": "sqlite"}) as grand:
                grand_attrs = grand.zipkin_attrs
            child_attrs = child.zipkin_attrs
        root_attrs = root.zipkin_attrs
    expected.append((root_attrs.trace_id, root_attrs.span_id, child_attrs.span_id,
                     grand_attrs.span_id, str(i)))
if not transport.codes or any(c != 202 for c in transport.codes):
    print(f"py_zipkin transport answers: {transport.codes}", file=sys.stderr)
    sys.exit(1)

def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)
bad = 0
for tid, rid, cid, gid, order in expected:
    try:
        d = get(f"{query}/api/traces/{tid}")["data"][0]
        svc = {p: v["serviceName"] for p, v in d["processes"].items()}
        tag = lambda s, k: next((t["value"] for t in s["tags"] if t["key"] == k), None)
        parent = lambda s: [r["spanID"] for r in s["references"] if r["refType"] == "CHILD_OF"]
        byid = {s["spanID"]: s for s in d["spans"]}
        assert set(byid) == {rid, cid, gid}, f"span ids {sorted(byid)}"
        assert all(svc[s["processID"]] == "py-api" for s in d["spans"])
        assert parent(byid[rid]) == [] and tag(byid[rid], "span.kind") == "server"
        assert tag(byid[rid], "order.id") == order
        assert parent(byid[cid]) == [rid] and byid[cid]["operationName"] == "price"
        assert tag(byid[cid], "span.kind") in (None, "internal")
        assert parent(byid[gid]) == [cid] and tag(byid[gid], "span.kind") == "client"
        assert tag(byid[gid], "db.system") == "sqlite"
        v3 = get(f"{query}/api/v3/traces/{tid}")["result"]["resourceSpans"]
        spans = {s["spanId"]: s for rs in v3 for ss in rs["scopeSpans"] for s in ss["spans"]}
        assert spans[gid].get("parentSpanId") == cid and spans[cid].get("parentSpanId") == rid
        assert spans[rid].get("kind") == 2 and spans[gid].get("kind") == 3
    except Exception as e:
        bad += 1
        print(f"py_zipkin trace {tid}: {type(e).__name__}: {e}", file=sys.stderr)
print(f"py_zipkin: {len(expected)} traces posted in {len(transport.codes)} request(s), {len(expected) - bad} read back complete")
sys.exit(1 if bad else 0)
EOF
result $? "py_zipkin nested spans (server > local > client) complete via /api/traces and /api/v3/traces"

kill -0 "$server_pid" 2>/dev/null
result $? "clew serve still running after both clients"
kill -TERM "$server_pid" 2>/dev/null
exit_code=0
wait "$server_pid" || exit_code=$?
server_pid=""
result $exit_code "clew serve exits 0 on SIGTERM"
if [ "$failed" -ne 0 ]; then
    echo "--- server log ---" >&2
    cat "$work/server.log" >&2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
