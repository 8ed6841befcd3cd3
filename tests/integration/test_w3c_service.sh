#!/usr/bin/env bash
# examples/w3c-service through the W3C trace-context processing model: two instances (A calls B,
# B calls a recording HTTP listener written in Python) and direct calls from A to the listener.
# Checks what arrives: a valid traceparent is continued (same trace id, a new parent id, flags
# kept) with its tracestate preserved; an invalid one (zero parent id, version ff, bad length)
# restarts the trace and drops tracestate; a future version with extra fields is continued as
# version 00; an unsampled parent stays unsampled; 32 tracestate members pass through whole; a bad
# body gets 400; both instances exit cleanly on SIGTERM.
set -euo pipefail

: "${CLEW_BUILD_DIR:?}"
: "${CLEW_SOURCE_DIR:?}"
svc="$CLEW_BUILD_DIR/examples/w3c-service"

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"
[ -x "$svc" ] || fail "$svc not built (target w3c-service in examples/CMakeLists.txt)"
command -v python3 >/dev/null 2>&1 || fail "python3 not found; run scripts/install-deps.sh"

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

start_service() { # start_service NAME PORT
    env OTEL_TRACES_EXPORTER=none OTEL_PROPAGATORS=tracecontext "$svc" --port "$2" \
        >"$work/$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        grep -q "listening" "$work/$1.log" 2>/dev/null && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.05
    done
    cat "$work/$1.log" >&2
    fail "w3c-service $1 did not start on port $2"
}

port_a=$(free_port)
port_b=$(free_port)
start_service a "$port_a"
start_service b "$port_b"

python3 - "$port_a" "$port_b" <<'PY'
import http.server, json, re, sys, threading, urllib.request

port_a, port_b = int(sys.argv[1]), int(sys.argv[2])
got = {}

class Rec(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        got[self.path] = {"traceparent": self.headers.get_all("traceparent"),
                          "tracestate": self.headers.get_all("tracestate"),
                          "body": body.decode()}
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass

rec = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Rec)
threading.Thread(target=rec.serve_forever, daemon=True).start()
R = "http://127.0.0.1:%d" % rec.server_address[1]
A = "http://127.0.0.1:%d/test" % port_a
B = "http://127.0.0.1:%d/test" % port_b

T = "4bf92f3577b34da6a3ce929d0e0e4736"
P = "00f067aa0ba902b7"
TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

def run(case, headers):
    """A forwards to the listener directly and through B; returns both arrivals."""
    calls = [{"url": R + "/" + case + "/direct", "arguments": {"case": case}},
             {"url": B, "arguments": [{"url": R + "/" + case + "/via-b", "arguments": [1, 2]}]}]
    req = urllib.request.Request(A, data=json.dumps(calls).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, (case, r.status)
    d, v = got.pop("/%s/direct" % case), got.pop("/%s/via-b" % case)
    assert json.loads(d["body"]) == {"case": case}, d["body"]
    assert json.loads(v["body"]) == [1, 2], v["body"]
    for x in (d, v):
        assert x["traceparent"] is not None and len(x["traceparent"]) == 1, (case, x)
    return d, v

def parts(x):
    m = TP_RE.match(x["traceparent"][0])
    assert m, x["traceparent"]
    return m.groups()

def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)

# valid: continued, tracestate preserved, flags kept
ts = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
d, v = run("valid", {"traceparent": "00-%s-%s-01" % (T, P), "tracestate": ts})
(td, pd, fd), (tv, pv, fv) = parts(d), parts(v)
check(td == T and tv == T, "valid traceparent: trace id kept through A and A->B")
check(pd != P and pv != P and pd != pv, "valid traceparent: every hop sends its own parent id")
check(fd == "01" and fv == "01", "valid traceparent: sampled flag kept")
check(d["tracestate"] == [ts] and v["tracestate"] == [ts], "valid traceparent: tracestate preserved")

# unsampled parent: continued, still unsampled
d, v = run("unsampled", {"traceparent": "00-%s-%s-00" % (T, P)})
check(parts(d)[0] == T and parts(d)[2] == "00" and parts(v)[2] == "00",
      "unsampled parent: continued with sampled flag clear")

# future version with extra fields: continued, sent as version 00
d, v = run("future", {"traceparent": "cc-%s-%s-01-what-the-future-will-be-like" % (T, P),
                      "tracestate": "foo=bar"})
check(parts(d)[0] == T and parts(v)[0] == T, "future version: trace continued as version 00")
check(d["tracestate"] == ["foo=bar"], "future version: tracestate preserved")

# invalid inputs: restarted, tracestate dropped
for name, tp in [("zero-parent", "00-%s-0000000000000000-01" % T),
                 ("zero-trace", "00-%s-%s-01" % ("0" * 32, P)),
                 ("version-ff", "ff-%s-%s-01" % (T, P)),
                 ("short", "00-%s-%s-01" % (T[:-1], P)),
                 ("uppercase", "00-%s-%s-01" % (T.upper(), P))]:
    d, v = run(name, {"traceparent": tp, "tracestate": "foo=bar"})
    (td, _, _), (tv, _, _) = parts(d), parts(v)
    check(td != T and td != "0" * 32 and tv == td, "invalid traceparent (%s): new trace" % name)
    check(not d["tracestate"], "invalid traceparent (%s): tracestate dropped" % name)

# no traceparent at all: a new trace, and both hops share it
d, v = run("none", {})
check(parts(d)[0] == parts(v)[0], "no traceparent: new trace shared by every hop")

# 32 tracestate members: the limit, passed through whole
ts32 = ",".join("k%d=v%d" % (i, i) for i in range(32))
d, v = run("ts32", {"traceparent": "00-%s-%s-01" % (T, P), "tracestate": ts32})
check(d["tracestate"] == [ts32] and v["tracestate"] == [ts32], "32 tracestate members preserved")

# a body that is not a list of calls is refused
req = urllib.request.Request(A, data=b'{"url": 1}', method="POST")
try:
    urllib.request.urlopen(req, timeout=10)
    sys.exit("FAIL: a non-list body was accepted")
except urllib.error.HTTPError as e:
    check(e.code == 400, "a non-list body gets 400")
PY
# both instances stop cleanly on SIGTERM (under the ASan build: without leak reports)
for i in 0 1; do
    kill -TERM "${pids[$i]}"
    rc=0
    wait "${pids[$i]}" || rc=$?
    [ $rc -eq 0 ] || fail "w3c-service exited with $rc after SIGTERM: $(cat "$work"/*.log)"
done
pids=()
! grep -q "Sanitizer" "$work"/*.log || fail "sanitizer reports: $(cat "$work"/*.log)"
echo "all w3c-service checks passed"
