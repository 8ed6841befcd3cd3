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

# shellcheck source=../lib/serve.sh
source "$CLEW_SOURCE_DIR/tests/lib/serve.sh"

command -v node >/dev/null 2>&1 || fail "node not found; run scripts/install-deps.sh"
command -v npm >/dev/null 2>&1 || fail "npm not found; run scripts/install-deps.sh"
node_major=$(node -e 'process.stdout.write(process.versions.node.split(".")[0])')
[ "$node_major" -ge 18 ] || fail "node $(node --version) is too old (need >= 18 for fetch); run scripts/install-deps.sh"

# ---- npm packages, cached per build dir ----
cache="$CLEW_BUILD_DIR/interop-node"
npm_install_cached "$here" "$cache" "the OpenTelemetry JS packages"
cp "$here/send.mjs" "$here/check.mjs" "$CLEW_SOURCE_DIR/tests/interop/lib/expected.mjs" "$cache/"

# ---- the server ----
serve_init_workdir

launch_server() {
    otlp_port=$(free_port)
    http_port=$(free_port)
    "$CLEW_BIN" serve --otlp-grpc off --zipkin off --otlp-http "127.0.0.1:$otlp_port" --http "127.0.0.1:$http_port" \
        --data-dir "$work/data" >"$work/server.log" 2>&1 &
    server_pid=$!
}
serve_start_retrying launch_server || fail "could not start clew serve"
echo "clew serve: OTLP/HTTP on 127.0.0.1:$otlp_port, query API on 127.0.0.1:$http_port"

# ---- send, then check, then the clean stop ----
serve_js_send_check "http://127.0.0.1:$otlp_port"
