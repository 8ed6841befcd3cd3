# tests/lib/servetest.py - shared plumbing of the python-driven tests of a real `clew serve`
# (tests/integration/test_crash_embedded.sh, test_crash_sampling.sh, test_tail_sampling.sh;
# not a test itself).
#
#   Server(clew, work, args)    start()/kill()/term(); start() retries while the killed process's
#                               ports are still held, and fails the test if it never gets ready
#   make_trace(n, error)        one 3-span OTLP/JSON batch with every attribute type; ids unique per
#                               (pid, n); `error` sets status ERROR on the last span
#   canon_batch(body)           a sorted, comparable form of the spans of an OTLP/JSON document
#   Fetcher(port).trace(tid)    GET /api/v3/traces/{tid} on one keep-alive connection: the canon
#                               form, or "HTTP 404" etc., or "no answer" (two tries failed)
#   Fetcher(port).metric(name)  one /metrics series as a float (None when absent)
#   send(port, body)            POST /v1/traces; True when answered 200 (= acknowledged)
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def fail(msg, log_path=None):
    sys.stderr.write("FAIL: %s\n" % msg)
    if log_path and os.path.exists(log_path):
        sys.stderr.write("--- server log (last 30 lines) ---\n")
        with open(log_path, "rb") as f:
            sys.stderr.write(b"".join(f.readlines()[-30:]).decode(errors="replace"))
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, clew, work, args):
        self.clew = clew
        self.args = args
        self.otlp_port = free_port()
        self.http_port = free_port()
        self.log_path = os.path.join(work, "server.log")
        self.log = open(self.log_path, "ab")
        self.proc = None

    def start(self):
        """Starts the server; fails the test if it never becomes ready."""
        for _ in range(50):
            self.proc = subprocess.Popen(
                [self.clew, "serve", "--otlp-http", "127.0.0.1:%d" % self.otlp_port,
                 "--http", "127.0.0.1:%d" % self.http_port, "--zipkin", "off",
                 "--otlp-grpc", "off", "--shutdown-timeout", "1s"] + self.args,
                stdout=self.log, stderr=self.log)
            for _ in range(200):
                if self.proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(
                            "http://127.0.0.1:%d/readyz" % self.http_port, timeout=1) as r:
                        if r.status == 200:
                            return
                except Exception:
                    pass
                time.sleep(0.05)
            # the killed process may still hold the port for a moment: retry
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            time.sleep(0.2)
        fail("clew serve did not start", self.log_path)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def term(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def make_trace(n, error):
    tid = "%016x%016x" % (0xC1E7 << 32 | os.getpid(), n)
    t0 = 1700000000000000000 + n * 1000
    spans = []
    for i in range(3):
        spans.append({
            "traceId": tid,
            "spanId": "%08x%08x" % (n & 0xffffffff, i + 1),
            "parentSpanId": "" if i == 0 else "%08x%08x" % (n & 0xffffffff, 1),
            "name": "op-%d" % i,
            "kind": 2 + (i % 2),
            "startTimeUnixNano": str(t0 + i),
            "endTimeUnixNano": str(t0 + 500 + i),
            "attributes": [
                {"key": "s", "value": {"stringValue": "v%d-%d" % (n, i)}},
                {"key": "i", "value": {"intValue": str(-n * 10 - i)}},
                {"key": "d", "value": {"doubleValue": 0.5 + i}},
                {"key": "b", "value": {"boolValue": i % 2 == 0}},
                {"key": "a", "value": {"arrayValue": {"values": [
                    {"stringValue": "x"}, {"intValue": str(n)}]}}},
            ],
            "status": {"code": 2 if (error and i == 2) else 0},
        })
    return tid, {"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "crash-svc"}}]},
        "scopeSpans": [{"scope": {"name": "crash-test"}, "spans": spans}]}]}


def send(port, body, timeout=3):
    req = urllib.request.Request(
        "http://127.0.0.1:%d/v1/traces" % port, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status == 200
    except Exception:
        return False


def canon_value(v):
    if "stringValue" in v:
        return ("s", v["stringValue"])
    if "intValue" in v:
        return ("i", int(v["intValue"]))
    if "doubleValue" in v:
        return ("d", float(v["doubleValue"]))
    if "boolValue" in v:
        return ("b", bool(v["boolValue"]))
    if "arrayValue" in v:
        return ("a", tuple(canon_value(x) for x in v["arrayValue"].get("values", [])))
    return ("?", json.dumps(v, sort_keys=True))


def canon_span(s, svc):
    return (s["spanId"].lower(), s.get("parentSpanId", "").lower(), s["name"],
            int(s.get("kind", 0)), int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"]),
            tuple(sorted((a["key"], canon_value(a["value"])) for a in s.get("attributes", []))),
            int(s.get("status", {}).get("code", 0)), svc)


def canon_batch(b):
    out = []
    for rs in b.get("resourceSpans", []):
        svc = None
        for a in rs.get("resource", {}).get("attributes", []):
            if a["key"] == "service.name":
                svc = a["value"].get("stringValue")
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                out.append(canon_span(s, svc))
    return sorted(out)


class Fetcher:
    """GETs on one keep-alive connection: a long run checks tens of thousands of traces."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self, path):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return None, b""  # no answer twice

    def trace(self, tid):
        status, body = self.get("/api/v3/traces/%s" % tid)
        if status is None:
            return "no answer"
        if status != 200:
            return "HTTP %d" % status
        return canon_batch(json.loads(body)["result"])

    def metric(self, name):
        status, body = self.get("/metrics")
        if status != 200:
            return None
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None
