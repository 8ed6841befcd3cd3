#!/usr/bin/env bash
# tests/integration/test_cli.sh - the `clew` command line end to end.
#
# Part 1 needs no server: help, version, usage errors (exit 2), bad input
# (exit 4), an unreachable server (exit 3).
# Part 2 starts `clew serve` on free loopback ports with a temporary data dir,
# POSTs a five-span OTLP JSON trace over three services (one error span), and
# checks `clew trace`, `clew search` and `clew services` against it, including
# the bottleneck marker and the "nothing found" exit code 1.
#
# Env: CLEW_BIN (the clew binary).
set -uo pipefail

: "${CLEW_BIN:?CLEW_BIN must point at the clew binary}"
CLEW="$CLEW_BIN"
failures=0
tmp=$(mktemp -d)
server_pid=""

cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect_rc WANT DESCRIPTION -- command...   (stdout -> $tmp/out, stderr -> $tmp/err)
expect_rc() {
    local want=$1 what=$2
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "$what: exit $rc, wanted $want"
        sed 's/^/  stdout: /' "$tmp/out" | head -20 >&2
        sed 's/^/  stderr: /' "$tmp/err" | head -20 >&2
        return 1
    fi
    return 0
}

expect_grep() { # FILE PATTERN DESCRIPTION
    if ! grep -qE -- "$2" "$1"; then
        fail "$3: no line matches /$2/ in:"
        sed 's/^/  | /' "$1" | head -30 >&2
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 30000))
}

# ---- part 1: no server ------------------------------------------------------

if expect_rc 0 "--help" -- "$CLEW" --help; then
    for cmd in serve trace search services help; do
        expect_grep "$tmp/out" "^  $cmd " "--help lists '$cmd'"
    done
    expect_grep "$tmp/out" "CLEW_SERVER" "--help names CLEW_SERVER"
    expect_grep "$tmp/out" "Exit codes" "--help lists the exit codes"
    [ -s "$tmp/err" ] && fail "--help wrote to stderr"
fi
expect_rc 0 "--version" -- "$CLEW" --version && expect_grep "$tmp/out" '^clew [0-9]+\.[0-9]+\.[0-9]+$' "--version"
expect_rc 0 "help trace" -- "$CLEW" help trace && expect_grep "$tmp/out" "--width N" "help trace lists --width"
expect_rc 0 "search --help" -- "$CLEW" search --help && expect_grep "$tmp/out" "--min-duration D" "search --help"
expect_rc 0 "services -h" -- "$CLEW" services -h

expect_rc 2 "no command" -- "$CLEW" && expect_grep "$tmp/err" "^Usage: clew" "usage on stderr"
[ -s "$tmp/out" ] && fail "usage error wrote to stdout"
expect_rc 2 "unknown command" -- "$CLEW" frobnicate && expect_grep "$tmp/err" "'frobnicate' is not a clew command" "unknown command message"
expect_rc 2 "help of unknown command" -- "$CLEW" help frobnicate
expect_rc 2 "unknown option" -- "$CLEW" trace 1 --frob
expect_rc 2 "missing trace id" -- "$CLEW" trace
expect_rc 2 "two trace ids" -- "$CLEW" trace 1 2
expect_rc 2 "option without its value" -- "$CLEW" search --service
expect_rc 2 "search positional" -- "$CLEW" search checkout

expect_rc 4 "non-hex trace id" -- "$CLEW" trace not-a-trace-id && expect_grep "$tmp/err" "is not a trace id" "bad id message"
expect_rc 4 "all-zero trace id" -- "$CLEW" trace 00000000
expect_rc 4 "33-digit trace id" -- "$CLEW" trace 0123456789abcdef0123456789abcdef0
expect_rc 4 "bad duration" -- "$CLEW" search --min-duration fast
expect_rc 4 "duration without unit" -- "$CLEW" search --max-duration 5
expect_rc 4 "tag without =" -- "$CLEW" search --tag http.method && expect_grep "$tmp/err" "KEY=VALUE" "tag message"
expect_rc 4 "bad limit" -- "$CLEW" search --limit lots
expect_rc 4 "min > max" -- "$CLEW" search --min-duration 2s --max-duration 1s
expect_rc 4 "bad width" -- "$CLEW" trace 1 --width 3
expect_rc 4 "bad server URL" -- "$CLEW" services --server ftp://example.org

dead_port=$(free_port)
expect_rc 3 "unreachable server (trace)" -- "$CLEW" trace 1 --server "http://127.0.0.1:$dead_port" &&
    expect_grep "$tmp/err" "cannot reach the clew server at http://127.0.0.1:$dead_port \(Connection refused\); start it with 'clew serve' or set --server" "unreachable message"
expect_rc 3 "unreachable server (search)" -- "$CLEW" search --server "127.0.0.1:$dead_port"
CLEW_SERVER="http://127.0.0.1:$dead_port" expect_rc 3 "unreachable server via CLEW_SERVER" -- "$CLEW" services

# ---- part 2: against a real server -----------------------------------------

otlp_port=$(free_port)
http_port=$(free_port)
while [ "$http_port" = "$otlp_port" ]; do http_port=$(free_port); done
mkdir -p "$tmp/data"
"$CLEW" serve --otlp-grpc off --zipkin off --otlp-http "127.0.0.1:$otlp_port" --http "127.0.0.1:$http_port" \
    --data-dir "$tmp/data" >"$tmp/serve.log" 2>&1 &
server_pid=$!
server="http://127.0.0.1:$http_port"

up=0
for _ in $(seq 1 100); do
    if curl -s -o /dev/null "$server/api/services" && curl -s -o /dev/null "http://127.0.0.1:$otlp_port/"; then
        up=1
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ $up -ne 1 ]; then
    fail "clew serve did not come up; its log:"
    sed 's/^/  | /' "$tmp/serve.log" >&2
    echo "$failures failure(s)"
    exit 1
fi

expect_rc 1 "services on an empty server" -- "$CLEW" services --server "$server"

trace_id=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
now=$(date +%s%N)
t0=$((now - 5000000000)) # five seconds ago
ms=1000000
span() { # id parent service-index name kind start_ms end_ms status_code status_message
    local parent_field=""
    [ -n "$2" ] && parent_field="\"parentSpanId\":\"$2\","
    printf '{"traceId":"%s","spanId":"%s",%s"name":"%s","kind":%s,"startTimeUnixNano":"%s","endTimeUnixNano":"%s","attributes":[{"key":"shop.step","value":{"stringValue":"%s"}}],"status":{"code":%s,"message":"%s"}}' \
        "$trace_id" "$1" "$parent_field" "$4" "$5" $((t0 + $6 * ms)) $((t0 + $7 * ms)) "$4" "$8" "$9"
}
resource() { # service spans...
    local svc=$1
    shift
    local IFS=,
    printf '{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"%s"}}]},"scopeSpans":[{"scope":{"name":"test"},"spans":[%s]}]}' "$svc" "$*"
}
root=aaaaaaaaaaaaaaa1
body=$(printf '{"resourceSpans":[%s,%s,%s]}' \
    "$(resource checkout \
        "$(span $root "" 0 "POST /checkout" 2 0 3000 0 "")" \
        "$(span aaaaaaaaaaaaaab1 $root 0 "load cart" 1 50 250 0 "")" \
        "$(span aaaaaaaaaaaaaae1 $root 0 "send receipt" 4 2960 2990 0 "")")" \
    "$(resource payment "$(span aaaaaaaaaaaaaac1 $root 1 "Charge" 2 300 2950 2 "card declined")")" \
    "$(resource fraud-check "$(span aaaaaaaaaaaaaad1 aaaaaaaaaaaaaac1 2 "Fraud Check" 3 400 2800 1 "")")")
code=$(curl -s -o "$tmp/post" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$body" "http://127.0.0.1:$otlp_port/v1/traces")
[ "$code" = "200" ] || fail "POST /v1/traces answered $code: $(cat "$tmp/post")"

# the head makes new spans queryable almost at once; allow a moment anyway
for _ in $(seq 1 50); do
    "$CLEW" trace "$trace_id" --server "$server" >/dev/null 2>&1 && break
    sleep 0.1
done

if expect_rc 0 "clew trace" -- "$CLEW" trace "$trace_id" --server "$server" --width 120; then
    for op in "POST /checkout" "load cart" "send receipt" "Charge" "Fraud Check"; do
        expect_grep "$tmp/out" "$op" "trace shows '$op'"
    done
    expect_grep "$tmp/out" "^trace $trace_id  5 spans  3 services  3\.00s  1 error" "trace header"
    expect_grep "$tmp/out" "fraud-check  Fraud Check .*<-- here's your problem$" "bottleneck marker on Fraud Check"
    [ "$(grep -c "here's your problem" "$tmp/out")" = "1" ] || fail "the marker appears on more than one row"
    expect_grep "$tmp/out" "^bottleneck: fraud-check: Fraud Check, 2\.40s self time, 80% of the trace$" "bottleneck footer"
    expect_grep "$tmp/out" "✗ .*payment  Charge" "error span marked"
    expect_grep "$tmp/out" "^error: payment: Charge \(card declined\)$" "error footer"
    if grep -q $'\033' "$tmp/out"; then fail "colour codes in piped output"; fi
    python3 -c 'import sys
sys.exit(any(len(l.rstrip("\n")) > 120 for l in open(sys.argv[1], encoding="utf-8")))' "$tmp/out" ||
        fail "a line is wider than --width 120"
    cp "$tmp/out" "$tmp/trace_plain"
fi
expect_rc 0 "clew trace upper-case id" -- "$CLEW" trace "$(echo "$trace_id" | tr a-f A-F)" --server "$server"
if expect_rc 0 "clew trace --json" -- "$CLEW" trace "$trace_id" --server "$server" --json; then
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "result" in d' "$tmp/out" 2>/dev/null ||
        fail "--json output is not the server's JSON"
    expect_grep "$tmp/out" '"Fraud Check"' "--json has the spans"
fi
CLEW_SERVER="$server" expect_rc 0 "CLEW_SERVER is used" -- "$CLEW" trace "$trace_id"

missing=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
expect_rc 1 "unknown trace" -- "$CLEW" trace "$missing" --server "$server" &&
    expect_grep "$tmp/err" "^clew: trace $missing not found on $server$" "not found message"

if expect_rc 0 "clew search --service payment" -- "$CLEW" search --service payment --server "$server"; then
    expect_grep "$tmp/out" "^TRACE ID +START +DURATION +SPANS +ERRORS +ROOT$" "search header"
    expect_grep "$tmp/out" "^$trace_id  .* 3\.00s +5 +1  checkout: POST /checkout$" "search row"
fi
expect_rc 0 "search by operation and duration" -- "$CLEW" search --service fraud-check --operation "Fraud Check" --min-duration 1s --since 10m --limit 5 --server "$server" &&
    expect_grep "$tmp/out" "^$trace_id " "search by operation"
expect_rc 0 "search by tag" -- "$CLEW" search --tag "shop.step=Fraud Check" --server "$server" &&
    expect_grep "$tmp/out" "^$trace_id " "search by tag"
expect_rc 0 "search --json" -- "$CLEW" search --service checkout --json --server "$server" &&
    expect_grep "$tmp/out" "\"$trace_id\"" "search --json"
expect_rc 1 "search finds nothing" -- "$CLEW" search --service no-such-service --server "$server" &&
    expect_grep "$tmp/err" "no traces matched" "nothing-found message"
expect_rc 1 "search too short" -- "$CLEW" search --service checkout --max-duration 1ms --server "$server"
expect_rc 1 "search too long ago" -- "$CLEW" search --service checkout --since 1s --server "$server"

if expect_rc 0 "clew services" -- "$CLEW" services --server "$server"; then
    printf 'checkout\nfraud-check\npayment\n' >"$tmp/want_services"
    diff -u "$tmp/want_services" "$tmp/out" >&2 || fail "services list"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s); server log:" >&2
    sed 's/^/  | /' "$tmp/serve.log" | tail -20 >&2
    exit 1
fi
echo "test_cli: all checks passed"
