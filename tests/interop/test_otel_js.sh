#!/usr/bin/env bash
# Interop: the real OpenTelemetry JS SDK (BatchSpanProcessor over the OTLP/HTTP protobuf and JSON
# exporters, with and without gzip) sends multi-service traces to `clew serve`; every trace is then
# read back through the Jaeger v1 and v3 query APIs and compared with what the SDK recorded.
#
# Needs node and npm (scripts/install-deps.sh installs them). The npm packages, pinned in
# otel_js/package.json and package-lock.json, are installed once into $CLEW_BUILD_DIR/interop-node
# and reused while those two files are unchanged.
set -euo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
: "${CLEW_SOURCE_DIR:?}"
: "${CLEW_BUILD_DIR:?}"
here="$CLEW_SOURCE_DIR/tests/interop/otel_js"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

command -v node >/dev/null 2>&1 || fail "node not found; run scripts/install-deps.sh"
command -v npm >/dev/null 2>&1 || fail "npm not found; run scripts/install-deps.sh"
node_major=$(node -e 'process.stdout.write(process.versions.node.split(".")[0])')
[ "$node_major" -ge 18 ] || fail "node $(node --version) is too old (need >= 18 for fetch); run scripts/install-deps.sh"

# ---- npm packages, cached per build dir ----
cache="$CLEW_BUILD_DIR/interop-node"
stamp=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$cache/.stamp" 2>/dev/null || true)" != "$stamp" ] || [ ! -d "$cache/node_modules" ]; then
    echo "installing the OpenTelemetry JS packages into $cache"
    rm -rf "$cache"
    mkdir -p "$cache"
    cp "$here/package.json" "$here/package-lock.json" "$cache/"
    # the lock file pins every version; keep registry hosts out of it if npm rewrites it
    if ! (cd "$cache" && npm install --no-audit --no-fund --omit-lockfile-registry-resolved \
        >npm-install.log 2>&1); then
        cat "$cache/npm-install.log" >&2
        fail "npm install failed (log above)"
    fi
    echo "$stamp" >"$cache/.stamp"
fi
cp "$here/send.mjs" "$here/check.mjs" "$cache/"

# ---- the server ----
work=$(mktemp -d)
server_pid=""
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_server() {
    local tries
    for tries in 1 2 3; do
        otlp_port=$(free_port)
        http_port=$(free_port)
        "$CLEW_BIN" serve --otlp-grpc off --zipkin off --otlp-http "127.0.0.1:$otlp_port" --http "127.0.0.1:$http_port" \
            --data-dir "$work/data" >"$work/server.log" 2>&1 &
        server_pid=$!
        for _ in $(seq 1 100); do
            if curl -fsS -o /dev/null "http://127.0.0.1:$http_port/readyz" 2>/dev/null; then
                return 0
            fi
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        stop_server
        echo "clew serve did not become ready (try $tries); its log:" >&2
        cat "$work/server.log" >&2
    done
    fail "could not start clew serve"
}
start_server
echo "clew serve: OTLP/HTTP on 127.0.0.1:$otlp_port, query API on 127.0.0.1:$http_port"

# ---- send, then check ----
unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_HEADERS \
    OTEL_EXPORTER_OTLP_TRACES_HEADERS OTEL_EXPORTER_OTLP_COMPRESSION OTEL_SDK_DISABLED \
    OTEL_TRACES_SAMPLER OTEL_TRACES_SAMPLER_ARG OTEL_RESOURCE_ATTRIBUTES OTEL_SERVICE_NAME
status=0
(cd "$cache" && node send.mjs "http://127.0.0.1:$otlp_port" "$work/expected.json") || status=$?
if [ $status -ne 0 ]; then
    echo "--- server log ---" >&2
    cat "$work/server.log" >&2
    fail "send.mjs exited with $status"
fi
(cd "$cache" && node check.mjs "http://127.0.0.1:$http_port" "$work/expected.json") || status=$?
kill -0 "$server_pid" 2>/dev/null || { status=1; echo "clew serve died during the test" >&2; }

# A clean stop is part of the contract (exit 0 on SIGTERM), and under the sanitizers it is where
# leaks and use-after-free in shutdown paths show up.
if [ $status -eq 0 ]; then
    kill -TERM "$server_pid"
    for _ in $(seq 1 150); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "FAIL - clew serve still running 15 s after SIGTERM" >&2
        status=1
    else
        exit_code=0
        wait "$server_pid" || exit_code=$?
        server_pid=""
        if [ "$exit_code" -eq 0 ]; then
            echo "ok - clew serve exits 0 on SIGTERM"
        else
            echo "FAIL - clew serve exited $exit_code on SIGTERM" >&2
            status=1
        fi
    fi
fi
if [ $status -ne 0 ]; then
    echo "--- server log (last 50 lines) ---" >&2
    tail -n 50 "$work/server.log" >&2
    exit 1
fi
