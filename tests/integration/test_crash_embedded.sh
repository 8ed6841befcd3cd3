#!/usr/bin/env bash
# The embedded store's crash contract: a span acknowledged with 200 survives kill -9.
# Starts `clew serve --storage embedded`, sends batches with unique trace ids (OTLP/JSON) from
# two client threads, kills the server with SIGKILL at random moments (4 times in ~15 s) and
# restarts it on the same data dir, then checks through /api/v3/traces/{id} that every
# acknowledged span is present and identical to what was sent.
#
# Knobs (environment), for the long run `make soak`:
#   CRASH_KILLS    kills while the clients send (default 4; one more follows at the end)
#   CRASH_SECONDS  about how long the kills take in all (default: 1.5-4 s between kills);
#                  the gaps are drawn uniformly from 0.5-1.5 times CRASH_SECONDS / CRASH_KILLS
#   CRASH_TIMEOUT  hard limit for the whole run in seconds (default 90, or a limit derived
#                  from the two above when they are set)
#   CRASH_KEEP     1 = keep the work dir (server log, data dir) and print where it is
set -euo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
: "${CLEW_SOURCE_DIR:?CLEW_SOURCE_DIR must point at the source tree}"
command -v python3 >/dev/null 2>&1 || {
    echo "FAIL: python3 not found" >&2
    exit 1
}

kills="${CRASH_KILLS:-4}"
seconds="${CRASH_SECONDS:-0}"
case "$kills$seconds" in
*[!0-9]*)
    echo "FAIL: CRASH_KILLS and CRASH_SECONDS must be whole numbers" >&2
    exit 1
    ;;
esac
if [ "$kills" -lt 1 ]; then
    echo "FAIL: CRASH_KILLS must be at least 1" >&2
    exit 1
fi
limit=90
if [ "${CRASH_KILLS:-}" != "" ] || [ "$seconds" -gt 0 ]; then
    # the kills, a restart (WAL replay) per kill, and the checks at the end
    limit=$((90 + seconds * 2 + kills * 20))
fi
limit="${CRASH_TIMEOUT:-$limit}"

work=$(mktemp -d)
if [ "${CRASH_KEEP:-0}" = 1 ]; then
    trap 'echo "work dir kept: $work"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi

# everything (server restarts included) is driven from one python program so that the
# kill moments and the bookkeeping of acknowledged batches share one clock
CLEW_WORK="$work" CRASH_KILLS="$kills" CRASH_SECONDS="$seconds" \
    PYTHONPATH="$CLEW_SOURCE_DIR/tests/lib" timeout "$limit" python3 - <<'EOF'
import os, random, subprocess, sys, threading, time
from servetest import Server, Fetcher, make_trace, send, canon_batch

clew = os.environ["CLEW_BIN"]
work = os.environ["CLEW_WORK"]
data_dir = os.path.join(work, "data")
KILLS = int(os.environ["CRASH_KILLS"])
SECONDS = float(os.environ["CRASH_SECONDS"])
seed = int(time.time())
rng = random.Random(seed)
print("crash test: %d kills, seed %d" % (KILLS, seed), flush=True)

def gap():
    if SECONDS <= 0:
        return rng.uniform(1.5, 4.0)
    mean = SECONDS / KILLS
    return rng.uniform(0.5 * mean, 1.5 * mean)

srv = Server(clew, work, ["--storage", "embedded", "--data-dir", data_dir, "--fsync", "interval",
                          "--block-duration", "1s", "--retention", "87600h"])

def make_batch(n):
    """One trace of 3 spans with every attribute type (the last span an error); ids unique per n."""
    return make_trace(n, True)

lock = threading.Lock()
acked = {}  # trace id -> n of make_batch(n), the batch sent
stop = threading.Event()
counter = [0]

def sender(k):
    while not stop.is_set():
        with lock:
            counter[0] += 1
            n = counter[0]
        tid, body = make_batch(n)
        if send(srv.otlp_port, body):
            with lock:
                acked[tid] = n  # make_batch(n) rebuilds the body for the check
        else:
            time.sleep(0.02)  # server down or refusing: not acknowledged

srv.start()
threads = [threading.Thread(target=sender, args=(k,)) for k in range(2)]
for t in threads:
    t.start()
kills = 0
t_start = time.time()
for _ in range(KILLS):
    time.sleep(gap())
    srv.kill()
    kills += 1
    if KILLS > 10 and kills % 10 == 0:
        with lock:
            n_acked = len(acked)
        print("  %d kills in %.0f s, %d traces acknowledged so far" %
              (kills, time.time() - t_start, n_acked), flush=True)
    time.sleep(rng.uniform(0.0, 0.3))
    srv.start()
time.sleep(1.0)
stop.set()
for t in threads:
    t.join()
# a last kill after the senders stopped, then a clean restart for the checks
srv.kill()
kills += 1
srv.start()

# the checks: two threads, one keep-alive connection each (the server has two workers); a long
# run has hundreds of thousands of traces
passed = failed = 0
spans_checked = 0
report_lock = threading.Lock()
items = sorted(acked.items())

def checker(part):
    global passed, failed, spans_checked
    f = Fetcher(srv.http_port)
    for tid, n in part:
        want = canon_batch(make_batch(n)[1])
        got = f.trace(tid)
        with report_lock:
            spans_checked += len(want)
            if got == want:
                passed += 1
            else:
                failed += 1
                if failed <= 5:
                    print("acknowledged trace %s differs or is missing after the crashes:\n"
                          "  want %r\n  got  %r" % (tid, want, got), file=sys.stderr)

t_check = time.time()
checkers = [threading.Thread(target=checker, args=(items[k::2],)) for k in range(2)]
for t in checkers:
    t.start()
for t in checkers:
    t.join()
check_secs = time.time() - t_check

try:
    srv.term(timeout=10)
except subprocess.TimeoutExpired:
    srv.proc.kill()
    print("FAIL: clew serve did not stop on SIGTERM", file=sys.stderr)
    failed += 1
print("%d kills, %d sent, %d acknowledged traces, %d traces and %d spans checked" %
      (kills, counter[0], len(acked), passed + failed, spans_checked))
print("%d passed, %d failed (checked in %.0f s)" % (passed, failed, check_secs))
if len(acked) < 20:
    print("FAIL: too few acknowledged batches (%d) for the test to mean anything" % len(acked),
          file=sys.stderr)
    sys.exit(1)
replays = open(os.path.join(work, "server.log")).read().count("replayed the WAL")
if replays < kills + 1:
    print("FAIL: expected %d WAL replays in the log, saw %d" % (kills + 1, replays), file=sys.stderr)
    sys.exit(1)
# the head was cut into blocks during the kills (--block-duration 1s): the checks above
# read across blocks and the head, and every block must verify
cuts = open(os.path.join(work, "server.log")).read().count("cut: ")
if cuts < 1:
    print("FAIL: no head cut in the log", file=sys.stderr)
    sys.exit(1)
v = subprocess.run([clew, "store", "verify", "--data-dir", data_dir], capture_output=True,
                   text=True)
if v.returncode != 0:
    print("FAIL: clew store verify exit %d:\n%s" % (v.returncode, v.stdout), file=sys.stderr)
    sys.exit(1)
print("%d cuts; clew store verify: %s" % (cuts, v.stdout.strip().splitlines()[-1]))
sys.exit(1 if failed else 0)
EOF
