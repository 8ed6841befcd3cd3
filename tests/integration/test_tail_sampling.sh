#!/usr/bin/env bash
# Tail sampling inside `clew serve` (embedded store): a tail_sampling section with a short
# decision_wait; a mix of traces over OTLP/HTTP JSON (errors, slow, normal, a /healthz error
# that a drop policy vetoes, late spans of a kept and of a dropped trace); then exactly which
# traces the query API returns, with their state, keptReason and adjustedCount. Then a
# SIGKILL while a trace is pending: after the restart it comes back pending, is decided, and
# the decisions made before the kill still hold. Also: /metrics, `clew trace` printing the
# reason, and the start-up refusals (bad section, section plus --sampling).
set -euo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
: "${CLEW_SOURCE_DIR:?CLEW_SOURCE_DIR must point at the source tree}"
command -v python3 >/dev/null 2>&1 || {
    echo "FAIL: python3 not found" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/clew.yaml" <<'YAML'
retention: 87600h
block_duration: 1s
tail_sampling:
  decision_wait: 4s
  decision_grace: 1s
  num_traces: 1000
  decision_cache: {sampled_cache_size: 100, non_sampled_cache_size: 100}
  policies:
    - name: no-health
      type: drop
      drop:
        drop_sub_policy:
          - {name: health, type: string_attribute, string_attribute: {key: url.path, values: [/healthz]}}
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: slow, type: latency, latency: {threshold_ms: 500}}
    - {name: tenth, type: probabilistic, probabilistic: {sampling_percentage: 0.0001}}
YAML

# start-up refusals
set +e
"$CLEW_BIN" serve --config "$work/clew.yaml" --sampling errors --data-dir "$work/x" \
    --otlp-http off --http off --zipkin off --otlp-grpc off >"$work/both.out" 2>&1
code=$?
set -e
[ "$code" = 2 ] || { cat "$work/both.out"; echo "FAIL: section + --sampling exited $code, want 2" >&2; exit 1; }
grep -q "both" "$work/both.out" || { cat "$work/both.out"; echo "FAIL: no reason given" >&2; exit 1; }
echo "ok: a tail_sampling section together with --sampling is refused (exit 2)"
printf 'tail_sampling:\n  policies:\n    - {name: x, type: no_such_policy}\n' >"$work/bad.yaml"
set +e
"$CLEW_BIN" serve --config "$work/bad.yaml" --data-dir "$work/x" \
    --otlp-http off --http off --zipkin off --otlp-grpc off >"$work/bad.out" 2>&1
code=$?
set -e
[ "$code" = 2 ] && grep -q "bad.yaml:3" "$work/bad.out" ||
    { cat "$work/bad.out"; echo "FAIL: bad policy type: exit $code, want 2 with file:line" >&2; exit 1; }
echo "ok: a bad policy is refused at start with file:line ($(head -1 "$work/bad.out"))"
set +e
"$CLEW_BIN" serve --sampling 'errors+slow:fast' --otlp-http off >"$work/preset.out" 2>&1
code=$?
set -e
[ "$code" = 2 ] || { cat "$work/preset.out"; echo "FAIL: bad preset exited $code" >&2; exit 1; }
echo "ok: a bad --sampling preset is refused ($(head -1 "$work/preset.out"))"

CLEW_WORK="$work" PYTHONPATH="$CLEW_SOURCE_DIR/tests/lib" timeout 120 python3 - <<'EOF'
import json, os, random, signal, subprocess, time
import urllib.request, urllib.error
from servetest import Server, Fetcher, fail as fail_with

clew = os.environ["CLEW_BIN"]
work = os.environ["CLEW_WORK"]
rng = random.Random()
srv = Server(clew, work, ["--config", os.path.join(work, "clew.yaml"), "--storage", "embedded",
                          "--data-dir", os.path.join(work, "data")])
otlp_port, http_port = srv.otlp_port, srv.http_port

def fail(msg):
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.kill()
    fail_with(msg, srv.log_path)

def hexid(n):
    return "".join("%02x" % rng.randrange(256) for _ in range(n))

now = time.time_ns()

def span(tid, sid, parent, name, dur_ms, error=False, path="/api/orders", offset_ms=0):
    s = {"traceId": tid, "spanId": sid, "name": name, "kind": 2,
         "startTimeUnixNano": str(now + offset_ms * 1000000),
         "endTimeUnixNano": str(now + (offset_ms + dur_ms) * 1000000),
         "attributes": [{"key": "url.path", "value": {"stringValue": path}}]}
    if parent:
        s["parentSpanId"] = parent
    if error:
        s["status"] = {"code": 2, "message": "boom"}
    return s

def send(spans, service="shop"):
    body = json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % otlp_port, data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 200:
            fail("POST answered %d" % r.status)

def get_trace(tid):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/traces/%s" % (http_port, tid),
                                    timeout=10) as r:
            doc = json.load(r)
            t = doc["data"][0]
            return t["clew"], len(t["spans"])
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None, 0
        raise

def metric(name):
    return Fetcher(http_port).metric(name)

def wait_until(pred, what, secs=15):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return
        time.sleep(0.2)
    fail("timed out waiting for " + what)

srv.start()
t_err, t_slow, t_norm, t_health = hexid(16), hexid(16), hexid(16), hexid(16)
r_err, r_slow, r_norm, r_health = hexid(8), hexid(8), hexid(8), hexid(8)
send([span(t_err, r_err, None, "GET /checkout", 50),
      span(t_err, hexid(8), r_err, "charge", 20, error=True, offset_ms=5),
      span(t_slow, r_slow, None, "GET /search", 900),
      span(t_norm, r_norm, None, "GET /home", 30),
      span(t_norm, hexid(8), r_norm, "SELECT", 5, offset_ms=2),
      span(t_health, r_health, None, "GET /healthz", 3, error=True, path="/healthz")])
# acknowledged = durable and queryable, marked pending until decided
for t in (t_err, t_slow, t_norm, t_health):
    meta, n = get_trace(t)
    if meta is None or meta["state"] != "pending":
        fail("trace %s right after the ack: %r, want state pending" % (t, meta))
print("ok: 4 traces acknowledged and queryable at once, state pending")

wait_until(lambda: get_trace(t_norm)[0] is None and get_trace(t_health)[0] is None
           and get_trace(t_err)[0]["state"] == "kept", "the decisions")
checks = {t_err: ("errors", 2), t_slow: ("slow", 1)}
for t, (reason, n_spans) in checks.items():
    meta, n = get_trace(t)
    if meta is None or meta["state"] != "kept" or meta["keptReason"] != reason or n != n_spans:
        fail("trace %s: %r with %d spans, want kept by %s with %d" % (t, meta, n, reason, n_spans))
    if meta["adjustedCount"] != 1:
        fail("trace %s adjustedCount %r, want 1" % (t, meta["adjustedCount"]))
print("ok: error trace kept (errors), slow trace kept (slow), normal trace and vetoed "
      "/healthz error trace gone")

# late spans follow the decision
send([span(t_err, hexid(8), r_err, "late-kept", 5, offset_ms=60),
      span(t_norm, hexid(8), r_norm, "late-dropped", 5, offset_ms=40)])
wait_until(lambda: get_trace(t_err)[1] == 3, "the late span of the kept trace")
time.sleep(1.0)
if get_trace(t_norm)[0] is not None:
    fail("a late span of a dropped trace was stored")
if (metric('clew_tail_late_spans_total{outcome="sampled"}') or 0) < 1 or \
   (metric('clew_tail_late_spans_total{outcome="dropped"}') or 0) < 1:
    fail("late spans not counted in /metrics")
print("ok: a late span of the kept trace is kept (3 spans), one of the dropped trace is not")

sampled = metric('clew_tail_traces_decided_total{outcome="sampled"}')
vetoed = metric('clew_tail_traces_decided_total{outcome="dropped"}')
notsampled = metric('clew_tail_traces_decided_total{outcome="not_sampled"}')
if (sampled, vetoed, notsampled) != (2, 1, 1):
    fail("decided by outcome: sampled %r dropped %r not_sampled %r, want 2 1 1"
         % (sampled, vetoed, notsampled))
if metric('clew_tail_policy_traces_total{policy="errors",outcome="sampled"}') != 1:
    fail("per-policy metric for errors is not 1")
print("ok: /metrics: 2 sampled, 1 vetoed by drop, 1 not sampled; per policy counts")

# `clew trace` prints the reason
out = subprocess.run([clew, "trace", "--server", "http://127.0.0.1:%d" % http_port, t_slow],
                     capture_output=True, text=True, timeout=30)
if out.returncode != 0 or "slow" not in out.stdout or "keptReason" not in out.stdout:
    fail("clew trace did not show the kept reason:\n" + out.stdout + out.stderr)
print("ok: clew trace shows keptReason slow")

# a crash while a trace is pending: it must come back pending, then be decided
t_p = hexid(16)
r_p = hexid(8)
send([span(t_p, r_p, None, "POST /pay", 10, error=True)])
meta, _ = get_trace(t_p)
if meta is None or meta["state"] != "pending":
    fail("the pre-crash trace is not pending: %r" % (meta,))
srv.kill()
srv.start()
meta, n = get_trace(t_p)
if meta is None or n != 1:
    fail("after the SIGKILL the pending trace is gone: %r" % (meta,))
if meta["state"] != "pending":
    fail("after the restart the undecided trace is %r, want pending" % (meta["state"],))
print("ok: after SIGKILL during decision_wait the acknowledged trace is back, still pending")
for t, (reason, n_spans) in ((t_err, ("errors", 3)), (t_slow, ("slow", 1))):
    meta, n = get_trace(t)
    if meta is None or meta["keptReason"] != reason or n != n_spans:
        fail("a decision made before the kill was lost: %s %r %d" % (t, meta, n))
for t in (t_norm, t_health):
    if get_trace(t)[0] is not None:
        fail("a dropped trace came back after the restart: %s" % t)
print("ok: decisions made before the kill hold (2 kept with reasons, 2 dropped stay gone)")
wait_until(lambda: get_trace(t_p)[0]["state"] == "kept", "the replayed trace's decision")
print("ok: the replayed pending trace is decided after the restart (kept: errors)")

rc = srv.term()
if rc != 0:
    fail("the server exited %d on SIGTERM" % rc)
print("ok: clean stop")
EOF
