#!/usr/bin/env bash
# Keeps the ingest load generator (bench/ingest_load) working: sends ~20,000 spans of the
# reference workload to a real `clew serve`, then checks that every request was answered 200,
# that the store holds exactly the spans and traces sent (/metrics), that /api/services lists the
# workload's services, and that a sample of the traces comes back whole. No timing assertions.
set -euo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
: "${CLEW_BUILD_DIR:?}"
: "${CLEW_SOURCE_DIR:?}"
load="$CLEW_BUILD_DIR/bench/ingest_load"

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"
[ -x "$load" ] || fail "$load not built (configure with -DCLEW_BENCH=ON, the default, and build ingest_load)"
command -v python3 >/dev/null 2>&1 || fail "python3 not found; run scripts/install-deps.sh"

serve_init_workdir

launch_server() {
    otlp_port=$(free_port)
    http_port=$(free_port)
    "$CLEW_BIN" serve --otlp-grpc off --zipkin off --otlp-http "127.0.0.1:$otlp_port" --http "127.0.0.1:$http_port" \
        --data-dir "$work/data" --max-traces 100000 >"$work/server.log" 2>&1 &
    server_pid=$!
}
serve_start_retrying launch_server || fail "could not start clew serve"

rc=0
"$load" --url "http://127.0.0.1:$otlp_port/v1/traces" --spans 20000 --connections 2 \
    --services 4 --templates 8 --seed 7 --server-pid "$server_pid" \
    --trace-log "$work/traces.txt" | tee "$work/load.out" || rc=$?
if [ $rc -ne 0 ]; then
    tail -n 30 "$work/server.log" >&2
    fail "ingest_load exited with $rc: not every request was acknowledged with 200"
fi

# 20,000 spans round up to 40 requests of 512
grep -q '^acknowledged: 40 requests (20480 spans) answered 200; 0 not' "$work/load.out" ||
    fail "expected 40 acknowledged requests (20480 spans); got: $(grep '^acknowledged' "$work/load.out")"
echo "ok - 40 requests, 20480 spans, all answered 200"

services=$(sed -n 's/^services: //p' "$work/load.out")
python3 - "$http_port" "$work/traces.txt" "$services" <<'EOF'
import json, sys, time, urllib.request, urllib.error

port, log_path, services = sys.argv[1], sys.argv[2], sys.argv[3].split(',')
base = f'http://127.0.0.1:{port}'
failed = 0
passed = 0

def check(ok, what, detail=''):
    global failed, passed
    if ok:
        passed += 1
        print(f'ok - {what}')
    else:
        failed += 1
        print(f'FAIL - {what}: {detail}')

def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors='replace')

traces = []
with open(log_path) as f:
    for line in f:
        tid, n = line.split()
        traces.append((tid, int(n)))
sent_spans = sum(n for _, n in traces)
check(sent_spans == 20480, 'trace log covers every span sent', f'{sent_spans} spans in the log')
check(len({t for t, _ in traces}) == len(traces), 'every trace id sent is unique')

# /metrics: the store must hold exactly what was acknowledged
deadline = time.time() + 5
while True:
    status, text = get('/metrics')
    values = {}
    for line in text.splitlines():
        if line.startswith('#') or ' ' not in line:
            continue
        name, _, value = line.rpartition(' ')
        values[name] = value
    spans = values.get('clew_store_spans')
    if spans == '20480' or time.time() > deadline:
        break
    time.sleep(0.2)
check(status == 200, 'GET /metrics answers 200', f'HTTP {status}')
accepted = values.get('clew_spans_accepted_total{receiver="otlp_http"}')
check(accepted == '20480', '/metrics clew_spans_accepted_total is 20480', f'got {accepted}')
check(spans == '20480', '/metrics clew_store_spans is 20480', f'got {spans}')
stored_traces = values.get('clew_store_traces')
check(stored_traces == str(len(traces)), f'/metrics clew_store_traces is {len(traces)}',
      f'got {stored_traces}')

status, body = get('/api/services')
got = sorted(json.loads(body).get('data') or []) if status == 200 else None
check(got == sorted(services), f'/api/services lists {",".join(sorted(services))}',
      f'HTTP {status}, {body[:300]}')

# a sample of traces, whole: first, last, and every 25th
sample = sorted(set([0, len(traces) - 1] + list(range(0, len(traces), 25))))
bad = []
for i in sample:
    tid, n = traces[i]
    status, body = get(f'/api/traces/{tid}')
    count = -1
    if status == 200:
        data = json.loads(body).get('data') or []
        count = len(data[0]['spans']) if data else 0
    if count != n:
        bad.append(f'{tid}: expected {n} spans, got {count} (HTTP {status})')
check(not bad, f'{len(sample)} sampled traces come back with every span', '; '.join(bad[:5]))

print(f'{passed} passed, {failed} failed')
sys.exit(1 if failed else 0)
EOF
kill -0 "$server_pid" 2>/dev/null || fail "clew serve died during the test"
