#!/usr/bin/env bash
# Interop: the real OpenTelemetry JS SDK with its OTLP/gRPC exporter
# (@opentelemetry/exporter-trace-otlp-grpc on @grpc/grpc-js; plain and grpc-encoding gzip) sends
# multi-service traces to `clew serve --otlp-grpc`; every trace is then read back through the
# Jaeger v1 and v3 query APIs and compared with what the SDK recorded, by the same check.mjs as the
# OTLP/HTTP interop test (tests/interop/otel_js/check.mjs). Prints "N passed, M failed".
#
# Needs node and npm (scripts/install-deps.sh installs them). The npm packages, pinned in
# otel_grpc/package.json and package-lock.json, are installed once into
# $CLEW_BUILD_DIR/interop-node-grpc and reused while those two files are unchanged.
set -euo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
: "${CLEW_SOURCE_DIR:?}"
: "${CLEW_BUILD_DIR:?}"
here="$CLEW_SOURCE_DIR/tests/interop/otel_grpc"
check="$CLEW_SOURCE_DIR/tests/interop/otel_js/check.mjs"

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"

command -v node >/dev/null 2>&1 || fail "node not found; run scripts/install-deps.sh"
command -v npm >/dev/null 2>&1 || fail "npm not found; run scripts/install-deps.sh"
node_major=$(node -e 'process.stdout.write(process.versions.node.split(".")[0])')
[ "$node_major" -ge 18 ] || fail "node $(node --version) is too old (need >= 18 for fetch in check.mjs); run scripts/install-deps.sh"

# ---- npm packages, cached per build dir ----
cache="$CLEW_BUILD_DIR/interop-node-grpc"
npm_install_cached "$here" "$cache" "the OpenTelemetry JS gRPC packages"
cp "$here/send.mjs" "$check" "$CLEW_SOURCE_DIR/tests/interop/lib/expected.mjs" "$cache/"

# ---- the server ----
serve_init_workdir

# Listeners this test does not use are off, so their default ports cannot stop the server.
off_flags=(--otlp-http off)
if "$CLEW_BIN" serve --help | grep -- '--zipkin ' >/dev/null; then
    off_flags+=(--zipkin off)
fi

launch_server() {
    grpc_port=$(free_port)
    http_port=$(free_port)
    "$CLEW_BIN" serve --otlp-grpc "127.0.0.1:$grpc_port" "${off_flags[@]}" --http "127.0.0.1:$http_port" \
        --data-dir "$work/data" >"$work/server.log" 2>&1 &
    server_pid=$!
}
serve_start_retrying launch_server || fail "could not start clew serve"
echo "clew serve: OTLP/gRPC on 127.0.0.1:$grpc_port, query API on 127.0.0.1:$http_port"

# ---- send, then check, then the clean stop ----
serve_js_send_check "http://127.0.0.1:$grpc_port"
