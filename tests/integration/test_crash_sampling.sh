#!/usr/bin/env bash
# Tail sampling's crash contract: acknowledged means durable while a trace waits for its
# decision, and decisions survive a restart. `clew serve --storage embedded` with a
# tail_sampling section (keep error traces, decision_wait 2s) takes traces from two client
# threads (one in three has an error span) while it is killed with SIGKILL at random moments
# and restarted on the same data dir. At the end, once nothing is pending, every acknowledged
# error trace must be present and identical through /api/v3/traces/{id}, and every
# acknowledged trace without an error must be gone (dropped by the policy, never lost
# undecided nor kept by accident).
# Knobs: CRASH_KILLS (default 4), CRASH_SECONDS (spread the kills over this many seconds),
# CRASH_TIMEOUT (seconds for the whole run, default 300; `make soak` raises all three).
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
tail_sampling:
  decision_wait: 2s
  decision_grace: 1s
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
YAML

CLEW_WORK="$work" PYTHONPATH="$CLEW_SOURCE_DIR/tests/lib" timeout "${CRASH_TIMEOUT:-300}" python3 - <<'EOF'
import os, random, sys, threading, time
from servetest import Server, Fetcher, make_trace, send, canon_batch, fail

work = os.environ["CLEW_WORK"]
KILLS = int(os.environ.get("CRASH_KILLS", "4"))
SECONDS = float(os.environ.get("CRASH_SECONDS", "0"))
seed = int(time.time())
rng = random.Random(seed)
print("crash test with tail sampling: %d kills, seed %d" % (KILLS, seed), flush=True)

srv = Server(os.environ["CLEW_BIN"], work,
             ["--config", os.path.join(work, "clew.yaml"), "--storage", "embedded",
              "--data-dir", os.path.join(work, "data"), "--fsync", "interval",
              "--block-duration", "1s", "--retention", "87600h"])

lock = threading.Lock()
acked = {}  # trace id -> (sent batch, has an error)
stop = threading.Event()
counter = [0]

def sender():
    while not stop.is_set():
        with lock:
            counter[0] += 1
            n = counter[0]
        error = n % 3 == 0
        tid, body = make_trace(n, error)
        if send(srv.otlp_port, body):
            with lock:
                acked[tid] = (body, error)
        else:
            time.sleep(0.02)  # server down or refusing: not acknowledged

def gap():
    if SECONDS <= 0:
        return rng.uniform(1.0, 3.5)  # around decision_wait: kills land before and after decisions
    mean = SECONDS / KILLS
    return rng.uniform(0.5 * mean, 1.5 * mean)

srv.start()
threads = [threading.Thread(target=sender) for _ in range(2)]
for t in threads:
    t.start()
for k in range(KILLS):
    time.sleep(gap())
    srv.kill()
    time.sleep(rng.uniform(0.0, 0.3))
    srv.start()
time.sleep(0.5)
stop.set()
for t in threads:
    t.join()
srv.kill()  # a last kill with traces surely pending
srv.start()

f = Fetcher(srv.http_port)
deadline = time.time() + 60
while True:
    pending = f.metric("clew_tail_pending_traces")
    queued = f.metric("clew_tail_decisions_queued")
    if pending == 0 and queued == 0:
        break
    if time.time() > deadline:
        fail("traces still pending 60 s after the last restart (%r pending)" % pending,
             srv.log_path)
    time.sleep(0.3)

kept = dropped = spans_checked = 0
bad = []
for tid, (body, error) in sorted(acked.items()):
    got = f.trace(tid)
    if error:
        want = canon_batch(body)
        spans_checked += len(want)
        if got == want:
            kept += 1
        else:
            bad.append("%s (error trace): %s" % (tid, got if isinstance(got, str) else
                                                 "%d spans differ" % len(got)))
    elif got == "HTTP 404":
        dropped += 1
    else:
        bad.append("%s (no error) was not dropped: %s" % (tid, got if isinstance(got, str) else
                                                          "%d spans stored" % len(got)))
if bad:
    for b in bad[:10]:
        sys.stderr.write("  " + b + "\n")
    fail("%d of %d acknowledged traces are wrong" % (len(bad), len(acked)), srv.log_path)
if kept == 0 or dropped == 0:
    fail("too little traffic to mean anything: %d kept, %d dropped" % (kept, dropped),
         srv.log_path)
rc = srv.term()
if rc != 0:
    fail("clew serve exited %d on SIGTERM" % rc, srv.log_path)
print("ok: %d kills; %d acknowledged error traces (%d spans) present and identical, %d "
      "acknowledged traces without errors dropped, none lost undecided" %
      (KILLS + 1, kept, spans_checked, dropped))
EOF
