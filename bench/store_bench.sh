#!/usr/bin/env bash
# The embedded store's end-to-end benchmark: ingest, size on disk and query latency of
# `clew serve --storage embedded` (the release build), all on loopback. Run it with
#     bash bench/store_bench.sh            (or SPANS=10000000 bash bench/store_bench.sh)
#
# Steps:
#  1. starts `clew serve --storage embedded --fsync interval --retention 100000h` (the reference
#     workload's timestamps are old by the time the blocks are cut; retention must not delete
#     them) with a generous --max-memory, on free loopback ports, in a temp data dir, with the
#     gRPC and Zipkin listeners off;
#  2. ingests SPANS spans with bench/ingest_load over 2 keep-alive connections, writing the trace
#     log (every trace id sent and its span count); ingest_load prints spans/s and the server's
#     CPU-seconds per million spans (--server-pid); then the OTLP requests of one WAL segment are
#     compressed one by one with zstd -6, the baseline for bytes per span;
#  3. stops the server with SIGTERM (the graceful stop cuts every kept trace into blocks, in
#     chunks of --block-size, then compacts; its duration and the server's peak RSS over the
#     whole run are printed), restarts it on the same data dir, and prints `du -sb` of the data
#     dir / spans (bytes per span on disk) next to OTLP protobuf (+ zstd) and `clew store stats`;
#  4. queries the restarted server over HTTP with a keep-alive python client that times every
#     request (send to last byte of the body): trace by id for N_IDS ids drawn uniformly from the
#     trace log (each once; the span count of every answer is checked against the log), then
#     N_SEARCH searches each: by service, by one attribute without service, by minimum duration,
#     by a 1 ms time range (start..end; ingest_load resends its 32 templates with
#     new ids but the same times, so the traces have only ~30 distinct start times and one
#     window holds ~1/30 of them), and an attribute query that matches nothing. All warm (a
#     first pass of lookups and searches has touched the blocks). Then cold runs: stop, try to
#     drop the page cache (`sync; echo 3 > /proc/sys/vm/drop_caches`, root only; the summary
#     says whether it worked), restart, and N_COLD trace-by-id lookups; then for each search
#     kind a cold restart of its own and N_COLD_SEARCH searches of that kind (the first one is
#     reported on its own: it is the only one that finds nothing loaded);
#  5. prints everything in one summary block at the end.
#
# Builds nothing: build the release configuration first, e.g.
#     cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2
# Settings (environment):
#   BUILD_DIR    build directory holding clew and bench/ingest_load (default: build)
#   SPANS        spans to ingest (default 2000000). The design's figure is for 10M spans; on a
#                2-core machine that takes too long for a default run, so SPANS=10000000 does it.
#                When the cuts fall behind ingest, the head fills and the server answers 429;
#                ingest_load then pauses and resends (--retry, as OTLP exporters do) and reports
#                how many requests it resent and how long it waited. The cut itself is bounded
#                (chunks of --block-size), so the shutdown cut does not grow the server.
#   CONNECTIONS  ingest connections (default 2)
#   MAX_MEMORY   the server's --max-memory (default 8GiB)
#   RETRY        resends of a request answered 429/503 (default 1000; 0 = a 429 fails the run)
#   N_IDS        warm trace-by-id lookups (default 2000); N_SEARCH per search kind (default 200);
#                N_COLD cold trace-by-id lookups (default 500); N_COLD_SEARCH queries per search
#                kind after a cold restart of its own (default 20)
#   KEEP_DATA    an empty directory to use as the data dir and keep (default: a temp dir,
#                removed at exit)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
clew="$build/clew"
load="$build/bench/ingest_load"
spans="${SPANS:-2000000}"
connections="${CONNECTIONS:-2}"
max_memory="${MAX_MEMORY:-8GiB}"
retry="${RETRY:-1000}"
n_ids="${N_IDS:-2000}"
n_search="${N_SEARCH:-200}"
n_cold="${N_COLD:-500}"
n_cold_search="${N_COLD_SEARCH:-20}"

for f in "$clew" "$load"; do
    if [ ! -x "$f" ]; then
        echo "store_bench: $f not found; build the release configuration first" >&2
        exit 1
    fi
done
command -v python3 >/dev/null || {
    echo "store_bench: python3 is needed for the query client" >&2
    exit 1
}

# shellcheck source=../tests/lib/serve.sh
source "$root/tests/lib/serve.sh"
# millions of spans: the graceful stop writes blocks, which takes longer than a test server's stop
SERVE_STOP_TENTHS=6000
serve_init_workdir
data="${KEEP_DATA:-$work/data}"
summary="$work/summary"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }

# start_server: starts the embedded server on $data (kept across restarts) and waits for /readyz;
# a restart replays the WAL and opens the blocks, which can take longer than serve_wait_ready's 10 s
start_server() {
    otlp_port=$(free_port)
    http_port=$(free_port)
    "$clew" serve --storage embedded --fsync interval --retention 100000h \
        --otlp-grpc off --zipkin off --otlp-http "127.0.0.1:$otlp_port" \
        --http "127.0.0.1:$http_port" --data-dir "$data" \
        --max-memory "$max_memory" >>"$work/server.log" 2>&1 &
    server_pid=$!
    local t0=$SECONDS
    while ! serve_wait_ready "http://127.0.0.1:$http_port/readyz"; do
        if ! kill -0 "$server_pid" 2>/dev/null || [ $((SECONDS - t0)) -gt 300 ]; then
            echo "store_bench: clew serve did not become ready; its log:" >&2
            tail -n 40 "$work/server.log" >&2
            exit 1
        fi
    done
    start_secs=$((SECONDS - t0))
}

# stop_server: SIGTERM and wait (the cut on shutdown); sets stop_secs to the seconds it took and
# stop_hwm_mib to the server's peak RSS (VmHWM, sampled every 0.2 s until it exits: the peak of
# the whole run, the shutdown cut included) and stop_cpu_s to the server's CPU seconds since it
# started (utime + stime, sampled the same way: the last 0.2 s before the exit may be missed)
stop_server() {
    local t0 sampler
    t0=$(date +%s.%N)
    : >"$work/hwm"
    : >"$work/cpu"
    (
        while kvb=$(awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status" 2>/dev/null) &&
            [ -n "$kvb" ]; do
            echo "$kvb" >"$work/hwm"
            awk '{print $14 + $15}' "/proc/$server_pid/stat" >"$work/cpu" 2>/dev/null || true
            sleep 0.2
        done
    ) &
    sampler=$!
    serve_stop
    wait "$sampler" 2>/dev/null || true
    stop_secs=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" \
        "$t0" "$(date +%s.%N)")
    stop_hwm_mib=$(awk '{printf "%.1f", $1 / 1024} END {if (NR == 0) print "?"}' "$work/hwm")
    stop_cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", $1 / hz} END {if (NR == 0) print "?"}' \
        "$work/cpu")
}

# drop_cache: sets cache_note to whether the page cache could be dropped (root only)
drop_cache() {
    sync
    if (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
        cache_note="page cache dropped (echo 3 > /proc/sys/vm/drop_caches worked)"
    else
        cache_note="page cache NOT dropped (drop_caches not writable here): 'cold' = fresh process only"
    fi
}

echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg);" \
    "$("$clew" --version 2>/dev/null | head -1 || true)" | tee -a "$summary"

# ---- 1-2: ingest ----
mkdir -p "$data"
start_server
echo "== ingest: $spans spans, $connections connections, 512 spans/request, embedded store =="
rc=0
"$load" --url "http://127.0.0.1:$otlp_port/v1/traces" --spans "$spans" \
    --connections "$connections" --server-pid "$server_pid" --trace-log "$work/traces.log" \
    --retry "$retry" \
    | tee "$work/ingest.out" || rc=$?
if [ $rc -ne 0 ]; then
    echo "store_bench: not every request was acknowledged (exit $rc); the server's cuts so far," \
        "then its log tail:" >&2
    grep -E "cut:" "$work/server.log" >&2 || echo "(no cut logged)" >&2
    tail -n 20 "$work/server.log" >&2
    exit 1
fi
cuts_ingest=$(grep "cut:" "$work/server.log" | grep -vc "cut: part" || true)

# The baseline for bytes per span: OTLP protobuf requests compressed one by one with zstd -6 (a
# stronger level than the block pages' default 2), as an exporter would send them. The WAL holds
# exactly those requests (the request's own protobuf bytes, or the store's encoding of a batch the
# receiver changed), so one segment still there after
# ingest is copied (the cut thread may release it meanwhile: then the next one) and the batch
# of every SPANS record in it is compressed on its own. The ratio times the protobuf bytes per
# span ingest_load printed gives B/span.
zstd_note="not measured (no zstd command)"
if command -v zstd >/dev/null; then
    mkdir -p "$work/zs"
    for seg in $(find "$data/wal" -name '*.wal' 2>/dev/null | sort | tail -n 3); do
        cp "$seg" "$work/zs/seg" 2>/dev/null && break
    done
    if [ -f "$work/zs/seg" ]; then
        zstd_note=$(python3 - "$work/zs" <<'EOF'
import os, struct, subprocess, sys
d = sys.argv[1]
buf = open(os.path.join(d, "seg"), "rb").read()
off, n, raw = 32, 0, 0
while off + 9 <= len(buf) and n < 400:
    ln, _crc, typ = struct.unpack_from("<IIB", buf, off)
    if ln == 0 or off + 9 + ln > len(buf):
        break
    p = buf[off + 9: off + 9 + ln]
    off += 9 + ln
    if typ != 1:
        continue
    tl = struct.unpack_from("<H", p, 0)[0]
    body = p[2 + tl + 1:]
    with open(os.path.join(d, "r%05d.pb" % n), "wb") as f:
        f.write(body)
    n += 1
    raw += len(body)
if n == 0:
    print("not measured (no SPANS record in the copied segment)")
    sys.exit(0)
files = sorted(x for x in os.listdir(d) if x.endswith(".pb"))
subprocess.run(["zstd", "-6", "-q", "-f"] + files, cwd=d, check=True)
z = sum(os.path.getsize(os.path.join(d, x + ".zst")) for x in files)
print("%d requests of %.1f KiB, zstd -6 each: ratio %.4f" % (n, raw / n / 1024.0, z / raw))
EOF
)
    fi
fi
pb_per_span=$(awk '/B\/span as protobuf/ {for (i = 1; i < NF; i++) if ($(i + 1) == "B/span") print $i}' \
    "$work/ingest.out" | head -1)

# ---- 3: cut on shutdown, restart, size ----
stop_server
say "ingest ($spans spans requested, $connections connections, --max-memory $max_memory):"
grep -v "^services:" "$work/ingest.out" \
    | sed 's/^/  /' | tee -a "$summary" >/dev/null || true
say "cuts finished during ingest: $cuts_ingest; graceful stop after ingest (the rest cut into" \
    "blocks, then compaction): ${stop_secs} s; server peak RSS over the whole run, shutdown cut" \
    "included: ${stop_hwm_mib} MiB"
acked_spans=$(awk '/^acknowledged:/ {gsub(/\(/, "", $4); print $4}' "$work/ingest.out" | head -1)
say "server CPU over the whole run (start, ingest, every cut, compaction, exit): ${stop_cpu_s} s =" \
    "$(awk -v c="$stop_cpu_s" -v n="$acked_spans" 'BEGIN {if (n > 0 && c != "?") printf "%.3f CPU-seconds per million spans = %.0f spans per CPU-second", c * 1e6 / n, n / c; else print "?"}')"
# one line per cut; the per-chunk lines (cut: part N) are summed up
grep "cut:" "$work/server.log" | grep -v "cut: part" | sed 's/^/  /' \
    | tee -a "$summary" >/dev/null || true
grep "compaction:" "$work/server.log" | sed 's/^/  /' | tee -a "$summary" >/dev/null || true
grep "cut: part" "$work/server.log" | awk '
    { for (i = 1; i <= NF; i++) {
          if ($i == "(copy") { c += $(i + 1) }
          if ($i == "write" && $(i + 2) == "s,") { w += $(i + 1) }
          if ($i == "back" && $(i + 1) == "and") { r += $(i + 3) }
      }
      n++ }
    END { if (n > 0) printf "  cut chunks: %d (one block each): copy %.1f s, block write %.1f s, " \
              "read back and swap %.1f s in total\n", n, c, w, r }' \
    | tee -a "$summary" >/dev/null || true
start_server
say "restart on the same data dir (replay + open blocks) until /readyz: ~${start_secs} s"
sent_spans=$(awk '{s += $2} END {print s + 0}' "$work/traces.log")
sent_traces=$(wc -l <"$work/traces.log")
disk_bytes=$(du -sb "$data" | cut -f1)
say "on disk: du -sb data dir = $disk_bytes bytes for $sent_spans spans in $sent_traces traces" \
    "= $(python3 -c "import sys; print('%.1f' % (int(sys.argv[1]) / int(sys.argv[2])))" \
        "$disk_bytes" "$sent_spans") B/span"
case "$zstd_note" in
*ratio*)
    ratio=${zstd_note##* }
    say "  next to OTLP protobuf: ${pb_per_span} B/span; OTLP protobuf + zstd -6 per request:" \
        "$(python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) * float(sys.argv[2])))" \
            "$ratio" "$pb_per_span") B/span ($zstd_note)"
    ;;
*) say "  OTLP protobuf + zstd: $zstd_note" ;;
esac
say "  blocks/: $(du -sb "$data/blocks" 2>/dev/null | cut -f1 || echo 0) bytes in" \
    "$(find "$data/blocks" -name '*.block' 2>/dev/null | wc -l) blocks;" \
    "wal/: $(du -sb "$data/wal" 2>/dev/null | cut -f1 || echo 0) bytes"
say "clew store stats --data-dir (server running; it reads the directory):"
"$clew" store stats --data-dir "$data" >"$work/stats.out" 2>&1 || true
sed 's/^/  /' "$work/stats.out" | tee -a "$summary" >/dev/null

# ---- 4: queries ----
cat >"$work/client.py" <<'EOF'
# Keep-alive HTTP query client: times each request from send to the last byte of the body.
import http.client, json, random, sys, time, urllib.parse

# mode: ids | cold (trace by id) | search (every kind) | coldsearch K (kind K only, cold)
port, mode, n, log_path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
only = int(sys.argv[5]) if len(sys.argv) > 5 else None
starts_path = log_path + ".starts"
rng = random.Random(12345 if mode in ("ids", "search") else 54321 + (only or 0))
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

def get(path):
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return time.perf_counter() - t0, r.status, body

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]

def report(label, lat, extra):
    first = "first %8.2f ms  " % (lat[0] * 1e3) if mode == "coldsearch" else ""
    print("  %-44s n=%-5d %sp50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  %s" % (
        label, len(lat), first, pct(lat, 50) * 1e3, pct(lat, 99) * 1e3, max(lat) * 1e3, extra))

errors = 0
if mode in ("ids", "cold"):
    traces = []
    with open(log_path) as f:
        for line in f:
            tid, cnt = line.split()
            traces.append((tid, int(cnt)))
    pick = rng.sample(traces, min(n, len(traces)))
    lat, wrong = [], 0
    for tid, cnt in pick:
        dt, st, body = get("/api/traces/" + tid)
        lat.append(dt)
        if st != 200:
            errors += 1
            continue
        data = json.loads(body)["data"]
        if len(data) != 1 or len(data[0]["spans"]) != cnt:
            wrong += 1
    report("trace by id (%s)" % ("cold" if mode == "cold" else "warm"), lat,
           "non-200: %d, span count != log: %d" % (errors, wrong))
else:
    services = ["frontend", "api-gateway", "checkout", "payment", "inventory", "shipping",
                "users", "catalog"]
    lb = "lookback=100000h"
    kinds = [
        ("search service=S limit=20", lambda: "service=%s&limit=20&%s" % (rng.choice(services), lb)),
        ('search tags={"http.request.method":"POST"}',
         lambda: "tags=%s&limit=20&%s" % (urllib.parse.quote('{"http.request.method":"POST"}'), lb)),
        ("search minDuration=250ms limit=20", lambda: "minDuration=250ms&limit=20&%s" % lb),
        ("search start..end 1 ms window limit=20", None),
        ('search tags={"app.user.tier":"platinum"} (none)',
         lambda: "tags=%s&limit=20&%s" % (urllib.parse.quote('{"app.user.tier":"platinum"}'), lb)),
    ]
    # The time windows: ingest_load resends its K pre-encoded requests with new trace ids but
    # the same times, and each request's traces start 1 ms apart from the same t0, so the
    # stored traces have only a few dozen distinct start times. A window is 1 ms starting at
    # one of them (found with one wide search), i.e. a slice of about 1/30 of the store.
    # The cold runs reuse the warm run's list, so that their first query is the measured one.
    if mode == "coldsearch":
        with open(starts_path) as f:
            starts = json.load(f)
    else:
        _, _, body = get("/api/traces?limit=1000&lookback=100000h")
        starts = sorted({min(sp["startTime"] for sp in t["spans"])
                         for t in json.loads(body)["data"]})
        with open(starts_path, "w") as f:
            json.dump(starts, f)
    win = 1000
    for ki, (label, mk) in enumerate(kinds):
        if only is not None and ki != only:
            continue
        if mode == "coldsearch":
            label = label.replace("search", "search (cold)", 1)
        lat, found, empty = [], 0, 0
        for _ in range(n):
            if mk is None:
                s = rng.choice(starts)
                q = "start=%d&end=%d&limit=20" % (s, s + win)
            else:
                q = mk()
            dt, st, body = get("/api/traces?" + q)
            lat.append(dt)
            if st != 200:
                errors += 1
                continue
            k = len(json.loads(body)["data"])
            found += k
            empty += k == 0
        report(label, lat, "non-200: %d, traces/answer %.1f, empty answers %d" % (
            errors, found / max(1, n), empty))
sys.exit(1 if errors else 0)
EOF

# (the time-range search uses 1 ms windows at the workload's trace start times; see client.py)
query() { python3 "$work/client.py" "$http_port" "$1" "$2" "$work/traces.log" ${3:+"$3"}; }

# a short first pass so that "warm" means the blocks' pages are in the page cache and the
# sections every search kind reads are loaded (8 services: 40 searches of each kind)
query ids 200 >/dev/null || true
query search 40 >/dev/null || true
say "queries (warm, restarted server, keep-alive, one client):"
qrc=0
query ids "$n_ids" | tee -a "$summary" || qrc=1
query search "$n_search" | tee -a "$summary" || qrc=1

stop_server
drop_cache
start_server
say "cold: server restarted (~${start_secs} s to /readyz); $cache_note"
query cold "$n_cold" | tee -a "$summary" || qrc=1
# each search kind after a cold restart of its own: its first query finds nothing loaded (not
# the blocks' sections in the process, not their pages in the page cache)
say "cold searches: a restart with the page cache dropped before each kind; 'first' is its" \
    "first query"
for kind in 0 1 2 3 4; do
    stop_server
    drop_cache
    start_server
    query coldsearch "$n_cold_search" "$kind" | tee -a "$summary" || qrc=1
done
stop_server

# ---- 5: summary ----
echo
echo "================ store_bench summary ================"
cat "$summary"
echo "======================================================"
exit $qrc
