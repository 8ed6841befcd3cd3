#!/usr/bin/env bash
# The ingest benchmark: starts `clew serve` (the release build) on ephemeral loopback ports with a
# temporary data dir, sends the reference workload with bench/ingest_load over keep-alive
# OTLP/HTTP protobuf connections, prints the figures and stops the server. When the server has a
# --workers flag, it runs once per worker count as well.
#
# Builds nothing: `make bench` builds first. Settings (environment):
#   BUILD_DIR    build directory holding clew and bench/ingest_load (default: build)
#   SPANS        spans per run (default 2000000)
#   CONNECTIONS  keep-alive connections (default 2)
#   (bench/grpc_load, when built, sends the same workload over OTLP/gRPC for a side-by-side figure)
#   MAX_TRACES   the server's --max-traces (default 1000000: more than one run sends)
#   MAX_MEMORY   the server's --max-memory (default 8GiB: the store must hold every span sent,
#                or the run would measure eviction or 429s instead of ingest)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
clew="$build/clew"
load="$build/bench/ingest_load"
grpc_load="$build/bench/grpc_load"
spans="${SPANS:-2000000}"
connections="${CONNECTIONS:-2}"
max_traces="${MAX_TRACES:-1000000}"
max_memory="${MAX_MEMORY:-8GiB}"

for f in "$clew" "$load"; do
    if [ ! -x "$f" ]; then
        echo "bench: $f not found; build first (make bench)" >&2
        exit 1
    fi
done

# shellcheck source=../tests/lib/serve.sh
source "$root/tests/lib/serve.sh"
# a release server with millions of spans may take longer than a test server to shut down
SERVE_STOP_TENTHS=100
serve_init_workdir

# start_server EXTRA_ARGS...: starts clew serve and waits for /readyz
start_server() {
    rm -rf "$work/data"
    otlp_port=$(free_port)
    http_port=$(free_port)
    grpc_port=$(free_port)
    "$clew" serve --otlp-grpc "127.0.0.1:$grpc_port" --zipkin off --otlp-http "127.0.0.1:$otlp_port" \
        --http "127.0.0.1:$http_port" \
        --data-dir "$work/data" --max-traces "$max_traces" \
        --max-memory "$max_memory" "$@" >"$work/server.log" 2>&1 &
    server_pid=$!
    if serve_wait_ready "http://127.0.0.1:$http_port/readyz"; then
        return 0
    fi
    echo "bench: clew serve did not become ready; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
}

run_once() {
    local label="$1"
    shift
    echo "== clew serve $label: $spans spans, $connections connections, 512 spans/request =="
    start_server "$@"
    local rc=0
    "$load" --url "http://127.0.0.1:$otlp_port/v1/traces" --spans "$spans" \
        --connections "$connections" --server-pid "$server_pid" || rc=$?
    serve_stop
    if [ $rc -ne 0 ]; then
        echo "bench: not every request was acknowledged (exit $rc); server log tail:" >&2
        tail -n 20 "$work/server.log" >&2
        return 1
    fi
    echo
}

# run_grpc LABEL: the same workload as OTLP/gRPC calls (bench/grpc_load), for the side-by-side figure
run_grpc() {
    echo "== clew serve $1, OTLP/gRPC: $spans spans, $connections connections x 8 streams, 512 spans/call =="
    start_server
    local rc=0
    "$grpc_load" --url "http://127.0.0.1:$grpc_port" --spans "$spans" \
        --connections "$connections" --server-pid "$server_pid" || rc=$?
    serve_stop
    if [ $rc -ne 0 ]; then
        echo "bench: not every gRPC call was acknowledged (exit $rc); server log tail:" >&2
        tail -n 20 "$work/server.log" >&2
        return 1
    fi
    echo
}

echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg);" \
    "$("$clew" --version 2>/dev/null | head -1 || true)"
status=0
run_once "(defaults)" || status=1
# the same workload with tail sampling on (issue 6: ingest with sampling on next to off);
# 1% of traces have errors, so most are decided "not sampled" once decision_wait passes
run_once "--sampling errors+slow:500ms+10%" --sampling 'errors+slow:500ms+10%' || status=1
if "$clew" serve --help 2>&1 | grep -q -- '--workers'; then
    run_once "--workers 1" --workers 1 || status=1
    run_once "--workers 2" --workers 2 || status=1
else
    echo "(clew serve has no --workers flag: one configuration only)"
fi
if [ -x "$grpc_load" ]; then
    run_grpc "(defaults)" || status=1
fi
exit $status
