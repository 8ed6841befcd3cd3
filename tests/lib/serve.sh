# shellcheck shell=bash
# tests/lib/serve.sh - shared plumbing for shell tests (and bench/run.sh) that run a real
# `clew serve` on loopback. Sourced, never run; not a test itself (only tests/*/test_*.sh are
# registered). It holds the start/stop mechanics only: every check and every line a test prints
# about what it checked stays in the test. fail, ok and free_port serve tests of other
# servers too (test_w3c_service.sh). Start or stop logic a test differs in on purpose (a server
# expected not to start, kill -9 crash tests, servers started without retries) stays local.
#
# Globals it reads and sets (the names the callers already used):
#   work        temp dir made by serve_init_workdir; the server's log is "$work/server.log"
#   server_pid  pid of the running server, "" when none
#   http_port   set by the caller's launch function: the query port whose /readyz is polled
#
# Functions:
#   fail MSG...           prints "FAIL: MSG" on stderr and exits 1 (a test may redefine it); when
#                         $LOG names an existing file (the server log of the receiver tests), its
#                         last 30 lines follow, since they usually say why
#   ok MSG...             prints "ok: MSG"
#   free_port             prints a loopback TCP port that was free a moment ago
#   serve_init_workdir    work=$(mktemp -d), server_pid="", and an EXIT trap that stops the
#                         server and removes $work
#   serve_stop            SIGTERM, waits up to $SERVE_STOP_TENTHS x 0.1 s (default 50) for the
#                         exit, then SIGKILL; reaps the process and clears server_pid. No-op
#                         without a server. The EXIT trap of serve_init_workdir calls it too.
#   serve_init_tmpdir PREFIX
#                         the receiver tests' variant: TMP=$(mktemp -d /tmp/PREFIX.XXXXXX),
#                         SERVER_PID="", and an EXIT trap that SIGKILLs a server still running
#                         (those tests check the clean SIGTERM stop themselves) and removes $TMP
#   serve_wait_ready URL [PID]
#                         polls URL (a /readyz) for up to 10 s; returns 1 at the timeout, or
#                         early when the server (PID, default $server_pid) has exited
#   serve_start_retrying LAUNCH
#                         runs the function LAUNCH (picks free ports, starts `clew serve` in the
#                         background with the listeners it does not use turned off, sets
#                         server_pid and http_port) up to 3 times, since a "free" port can be
#                         taken before the server binds it; returns 1 if no try became ready
#
# HTTP check helpers of the receiver tests (they use $TMP from serve_init_tmpdir and $QUERY,
# the query API's base URL):
#   rand_hex N            N random bytes as hex (ids)
#   hex_to_proto HEX      "5b8e..." -> "\x5b\x8e..." for protobuf text format
#   post URL CONTENT_TYPE FILE [curl args...]
#                         POSTs FILE; sets CODE; body in $TMP/resp, headers in $TMP/hdr
#   get URL [curl args...]  the same for a GET
#   expect_code WANT WHAT fails unless the last post/get answered HTTP WANT
#   header NAME           a header of the last answer, blanks removed
#   metric 'NAME{LABELS}' the value of one /metrics series as an integer, 0 when absent
#
# Interop helpers (node tests):
#   npm_install_cached HERE CACHE WHAT
#                         installs the npm packages pinned in
#                         HERE/package.json and HERE/package-lock.json into CACHE (a folder of the
#                         build dir), once, and again only when those two files change (CACHE/.stamp
#                         holds their hash); says "installing WHAT into CACHE" when it installs
#   serve_js_send_check SEND_URL
#                         the OpenTelemetry JS interop run (CACHE from npm_install_cached in
#                         $cache, the server's query API on $http_port): send.mjs sends to
#                         SEND_URL and writes what the SDK recorded to $work/expected.json,
#                         check.mjs reads every trace back and compares, then the clean stop
#                         (serve_term_expect_zero); on any failure: the server log's tail, exit 1
#   serve_term_expect_zero
#                         the clean-stop contract: SIGTERM, the server must exit 0 within 15 s
#                         (under the sanitizers this is where shutdown leaks show up); prints an
#                         ok/FAIL line and returns 1 on failure

fail() {
    echo "FAIL: $*" >&2
    if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
        echo "--- server log (last 30 lines) ---" >&2
        tail -30 "$LOG" >&2
    fi
    exit 1
}
ok() { echo "ok: $*"; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

serve_stop() {
    local tenths=${SERVE_STOP_TENTHS:-50}
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 "$tenths"); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

serve_cleanup() {
    serve_stop
    rm -rf "$work"
}

serve_init_workdir() {
    work=$(mktemp -d)
    server_pid=""
    trap serve_cleanup EXIT
}

serve_kill_cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}

serve_init_tmpdir() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    SERVER_PID=""
    trap serve_kill_cleanup EXIT
}

serve_wait_ready() {
    local url=$1 pid=${2:-$server_pid}
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}

serve_start_retrying() {
    local launch=$1 tries
    for tries in 1 2 3; do
        "$launch"
        # shellcheck disable=SC2154 # http_port is set by the caller's launch function
        if serve_wait_ready "http://127.0.0.1:$http_port/readyz"; then
            return 0
        fi
        serve_stop
        echo "clew serve did not become ready (try $tries); its log:" >&2
        cat "$work/server.log" >&2
    done
    return 1
}

rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
hex_to_proto() { echo "$1" | sed 's/../\\x&/g'; }

post() {
    local url=$1 ct=$2 file=$3
    shift 3
    CODE=$(curl -s -o "$TMP/resp" -D "$TMP/hdr" -w '%{http_code}' -X POST -H "Content-Type: $ct" \
        --data-binary @"$file" "$@" "$url") || true
}
get() {
    CODE=$(curl -s -o "$TMP/resp" -D "$TMP/hdr" -w '%{http_code}' "$@") || true
}
expect_code() {
    [ "$CODE" = "$1" ] || fail "$2: expected HTTP $1, got $CODE (body: $(head -c 300 "$TMP/resp" 2>/dev/null))"
}
header() { grep -i "^$1:" "$TMP/hdr" | head -1 | cut -d: -f2- | tr -d ' \r'; }

metric() {
    curl -s "$QUERY/metrics" | python3 -c '
import sys
want = sys.argv[1]
for line in sys.stdin:
    if line.startswith(want + " "):
        print(int(float(line.split()[-1]))); break
else:
    print(0)' "$1"
}

npm_install_cached() {
    local here=$1 cache=$2 what=$3 stamp
    stamp=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$cache/.stamp" 2>/dev/null || true)" != "$stamp" ] || [ ! -d "$cache/node_modules" ]; then
        echo "installing $what into $cache"
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
}

serve_term_expect_zero() {
    local exit_code=0
    kill -TERM "$server_pid"
    for _ in $(seq 1 150); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "FAIL - clew serve still running 15 s after SIGTERM" >&2
        return 1
    fi
    wait "$server_pid" || exit_code=$?
    server_pid=""
    if [ "$exit_code" -ne 0 ]; then
        echo "FAIL - clew serve exited $exit_code on SIGTERM" >&2
        return 1
    fi
    echo "ok - clew serve exits 0 on SIGTERM"
}

serve_js_send_check() {
    local send_url=$1 status=0
    unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_HEADERS \
        OTEL_EXPORTER_OTLP_TRACES_HEADERS OTEL_EXPORTER_OTLP_COMPRESSION OTEL_SDK_DISABLED \
        OTEL_TRACES_SAMPLER OTEL_TRACES_SAMPLER_ARG OTEL_RESOURCE_ATTRIBUTES OTEL_SERVICE_NAME
    (cd "$cache" && node send.mjs "$send_url" "$work/expected.json") || status=$?
    if [ $status -ne 0 ]; then
        echo "--- server log ---" >&2
        cat "$work/server.log" >&2
        fail "send.mjs exited with $status"
    fi
    (cd "$cache" && node check.mjs "http://127.0.0.1:$http_port" "$work/expected.json") || status=$?
    kill -0 "$server_pid" 2>/dev/null || { status=1; echo "clew serve died during the test" >&2; }

    # A clean stop is part of the contract (exit 0 on SIGTERM), and under the sanitizers it is
    # where leaks and use-after-free in shutdown paths show up.
    if [ $status -eq 0 ]; then
        serve_term_expect_zero || status=1
    fi
    if [ $status -ne 0 ]; then
        echo "--- server log (last 50 lines) ---" >&2
        tail -n 50 "$work/server.log" >&2
        exit 1
    fi
}
