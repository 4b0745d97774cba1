#!/usr/bin/env python3
"""The fault matrix of issue 19: a steady write load against a live tagd while one fault at a
time is injected, and what the clients saw. Standard library only, except the NATS fault, which
installs `nats-py` from PyPI when it is missing. Run it through bench/faults.sh (as root: it
restarts PostgreSQL and NATS and mounts a tmpfs).

    bash bench/faults.sh --quick                 # CI: every fault, short phases (about 2 minutes)
    bash bench/faults.sh                         # longer phases (20 s of load on each side, NATS down 60 s)
    bash bench/faults.sh --only pg_restart --backends postgres --binary target/debug/tagd
    bash bench/faults.sh --only pg_conn_cut --backends postgres --threads 64 --hold 60

For every fault it prints one line on stdout:

    FAULT <name> backend=<sqlite|postgres> requests=<n> status=<200:n,503:n,conn:n,...>
          acked_lost=<n> first_success_after=<s> [reads=... integrity=ok] [events_missing=<n>]

- The load: 8 client threads (--threads), each on a keep-alive connection (http.client, 45 s
  timeout: past tagd's own bound of a 30 s request timeout plus 10 s for a committing write),
  each paced to a steady rate, each request a v5 `POST /api/v5/entity/user/tags/assign` of a
  fresh user `f<thread>-<seq>` (registered beforehand with `tagd import`) in a `number` group,
  with value `<seq>`. Every answer is counted by status; `200` only when the body's code is 0,
  `200/<code>` otherwise; `conn` is a connection refused, reset or closed, `timeout` no
  answer within 45 s (a hang).
- acked_lost: the writes answered 200 whose user does not hold that value afterwards, read
  straight from the database (sqlite3 module, or psql on PostgreSQL) with tagd stopped.
- first_success_after: seconds from the end of the fault (PostgreSQL accepting connections
  again, seen by a startup-message probe every 50 ms; the proxy listening again; the filler
  deleted; the new tagd process spawned; NATS accepting connections again; the receiver
  answering 204 again) to the first 200 received after it.
- events_missing: events of the organization's change feed (`GET /api/v5/changes`) that never
  reached JetStream (by `Nats-Msg-Id`) or the webhook receiver (by `webhook-id`).

The exit status is 1 when any line has acked_lost > 0, an answer other than 200, 503 and
`conn` (a 500, a 4xx to a valid write, a `timeout`), a 503 without `Retry-After`, a 503
"whether it was applied is unknown" more than 1 s into a connection cut (no connection exists
then: nothing can be committing), events_missing > 0, integrity other than ok, a read that
failed while the disk was full, a fault after which no write succeeded within 30 s, a tagd that
did not stop on SIGTERM, or a panic in a tagd log. Details (answers while the fault lasted, the
longest time without a 200, the slowest answer, how many answers carried each error message,
tagd's last warnings) go to stderr as `#` lines. docs/RELIABILITY.md, "Fault matrix", has the
faults one by one and the last results.

Whatever happens, the script stops every tagd it started, drops its PostgreSQL schemas,
unmounts its tmpfs, purges its organizations' subjects from stream TAGD, and starts NATS and
PostgreSQL again if it stopped them (bench/faults.sh does the same once more from a trap).
"""

import argparse
import asyncio
import collections
import http.client
import http.server
import importlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TAGD_FAULTS_POSTGRES_URL",
                        os.environ.get("TAGD_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"))
NATS_HOST, NATS_PORT = "127.0.0.1", 4222
NATS_URL = f"nats://{NATS_HOST}:{NATS_PORT}"
ADMIN_TOKEN = secrets.token_hex(24)
WEBHOOK_SCHEDULE = "1s,1s,2s,2s,5s,5s,5s,5s,10s,10s"  # 46 s in all: longer than any receiver outage here
THREADS = 8
# A client gives up after tagd's own bound: the request timeout (30 s), plus the 10 s it may wait
# for a write already committing. Answers slower than 5 s are counted in the notes.
CLIENT_TIMEOUT = float(os.environ.get("TAGD_FAULTS_CLIENT_TIMEOUT", "45"))
RECOVERY_CAP = 30.0  # a fault after which no write succeeds within this long never recovered

# Per mode: writes a second per thread, seconds of load before the fault and after the first
# success, how long each fault is held, how long events may take to arrive after the load. The
# tmpfs of sqlite_disk_full must hold the database and its WAL before the filler takes the rest:
# tagd lets the WAL grow to 128 MiB before the writer copies it back (docs/RELIABILITY.md, "Soak").
MODES = {
    "quick": {"rate": 25, "before": 3, "after": 3, "conn_cut": 4, "disk_full": 5, "tmpfs_mb": 256, "nats_down": 10,
              "webhook_down": 10, "events_cap": 90},
    "full": {"rate": 50, "before": 20, "after": 20, "conn_cut": 10, "disk_full": 15, "tmpfs_mb": 256, "nats_down": 60,
             "webhook_down": 30, "events_cap": 180},
}
ALL_FAULTS = ["sqlite_disk_full", "pg_restart", "pg_kill9", "pg_conn_cut", "tagd_kill9", "nats_down",
              "webhook_receiver_down"]


class Failure(Exception):
    pass


def log(message):
    print(f"# {message}", file=sys.stderr, flush=True)


def sh(args, check=True, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    result = subprocess.run(args, **kwargs)
    if check and result.returncode != 0:
        raise Failure(f"{' '.join(map(str, args))} exited {result.returncode}: "
                      f"{(result.stderr or '').strip()[-500:]}")
    return result


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(what, predicate, timeout, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise Failure(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def counts_text(counter):
    """`200:n,503:n,conn:n`: numeric statuses first, in order, then the words."""
    def key(item):
        status = item[0]
        return (0, int(status), "") if status.isdigit() else (1, 0, status)
    return ",".join(f"{status}:{n}" for status, n in sorted(counter.items(), key=key)) or "none"


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def pg_version():
    versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in re.findall(r"\d+", v)])
    running = [v for v in versions if Path(f"/var/lib/postgresql/{v}/main/postmaster.pid").exists()]
    return (running or versions)[-1]


def pg_url_parts():
    url = urllib.parse.urlsplit(PG_URL)
    return url, url.hostname or "127.0.0.1", url.port or 5432


def pg_schema_url(schema, port=None):
    """PG_URL with `search_path` set to `schema` (and another port: the proxy's)."""
    url, host, default_port = pg_url_parts()
    user = url.netloc.rsplit("@", 1)[0] + "@" if "@" in url.netloc else ""
    netloc = f"{user}{host}:{port or default_port}"
    query = (url.query + "&" if url.query else "") + f"options=-c%20search_path%3D{schema}"
    return urllib.parse.urlunsplit((url.scheme, netloc, url.path, query, ""))


def psql(sql, schema=None, check=True):
    options = "-c client_min_messages=warning" + (f" -c search_path={schema}" if schema else "")
    return sh(["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
              env={**os.environ, "PGOPTIONS": options}, check=check)


def pg_ready():
    _, host, port = pg_url_parts()
    return sh(["pg_isready", "-q", "-h", host, "-p", str(port)], check=False).returncode == 0


def pg_ctl(action, check=True):
    return sh(["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", action], check=check)


def ensure_postgres_up():
    """PostgreSQL accepting connections again, whatever a fault left (retried: after a kill -9 the
    old backends may hold the shared memory for a moment)."""
    if pg_ready():
        return
    log("PostgreSQL is down: starting it")
    deadline = time.monotonic() + 60
    while not pg_ready():
        result = pg_ctl("start", check=False)
        if result.returncode == 0:
            wait_until("PostgreSQL accepting connections", pg_ready, 30)
            return
        if time.monotonic() > deadline:
            raise Failure(f"PostgreSQL does not start: {result.stderr.strip()[-500:]}")
        time.sleep(0.5)


def pg_accepting(timeout=0.5):
    """True when PostgreSQL answers a startup message with an authentication request (it accepts
    connections), False when it refuses them, is starting up or shutting down, or is gone."""
    url, host, port = pg_url_parts()
    user = (url.username or "postgres").encode()
    database = (url.path.lstrip("/") or url.username or "postgres").encode()
    params = b"user\0" + user + b"\0database\0" + database + b"\0\0"
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
            accepted = s.recv(1) == b"R"
            try:
                s.sendall(b"X\0\0\0\x04")
            except OSError:
                pass
            return accepted
    except OSError:
        return False


class PgMonitor:
    """Asks PostgreSQL every 50 ms whether it accepts connections, to time its outage."""

    def __init__(self):
        self.samples = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stopping.is_set():
            at = time.monotonic()
            self.samples.append((at, pg_accepting()))
            time.sleep(max(0.0, 0.05 - (time.monotonic() - at)))

    def stop(self):
        self.stopping.set()
        self.thread.join()

    def outage(self):
        """(first moment seen refusing, first moment seen accepting after the last refusal),
        or None when no refusal was seen."""
        refused = [at for at, ok in self.samples if not ok]
        if not refused:
            return None
        back = next((at for at, ok in self.samples if ok and at > refused[-1]), None)
        return refused[0], back


# ---------------------------------------------------------------------------------------------
# NATS


def nats_processes():
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if argv and os.path.basename(argv[0].decode(errors="replace")) == "nats-server":
            found.append((int(entry.name), argv))
    return found


class Nats:
    """The machine's nats-server: stopped and started again with its exact command line,
    working directory, environment and output file."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.saved = None

    def stop(self):
        candidates = nats_processes()
        mine = [(pid, argv) for pid, argv in candidates if str(NATS_PORT).encode() in b" ".join(argv)]
        if len(mine) != 1:
            mine = candidates if len(candidates) == 1 else mine
        if len(mine) != 1:
            raise Failure(f"cannot tell which nats-server serves port {NATS_PORT}: "
                          f"{[(p, b' '.join(a).decode()) for p, a in candidates]}")
        pid, argv = mine[0]
        proc = Path(f"/proc/{pid}")
        out = os.readlink(proc / "fd" / "1") if (proc / "fd" / "1").exists() else "/dev/null"
        environ = dict(item.split(b"=", 1) for item in (proc / "environ").read_bytes().split(b"\0") if b"=" in item)
        self.saved = {"argv": argv, "cwd": os.readlink(proc / "cwd"), "env": environ,
                      "out": out if out.startswith("/") and os.path.isfile(out) else "/dev/null"}
        if self.state_dir:
            (self.state_dir / "nats.argv").write_bytes(b"\0".join(argv) + b"\0")
            (self.state_dir / "nats.cwd").write_text(self.saved["cwd"])
            (self.state_dir / "nats.out").write_text(self.saved["out"])
        log(f"stopping nats-server {pid}: {b' '.join(argv).decode()}")
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until("nats-server to exit", lambda: not Path(f"/proc/{pid}").exists(), 15)
        except Failure:
            os.kill(pid, signal.SIGKILL)
        wait_until("port 4222 to close", lambda: not port_open(NATS_HOST, NATS_PORT), 10)

    def start(self):
        if self.saved is None or port_open(NATS_HOST, NATS_PORT):
            return
        out = open(self.saved["out"], "ab")
        subprocess.Popen(self.saved["argv"], cwd=self.saved["cwd"], env=self.saved["env"], stdin=subprocess.DEVNULL,
                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        wait_until("nats-server accepting connections", lambda: port_open(NATS_HOST, NATS_PORT), 30)
        log("nats-server started again")
        self.saved = None
        if self.state_dir:
            for name in ("nats.argv", "nats.cwd", "nats.out"):
                (self.state_dir / name).unlink(missing_ok=True)


def import_nats():
    try:
        return importlib.import_module("nats")
    except ImportError:
        log("installing nats-py from PyPI")
        result = sh([sys.executable, "-m", "pip", "install", "-q", "nats-py"], check=False)
        importlib.invalidate_caches()
        try:
            return importlib.import_module("nats")
        except ImportError:
            raise Failure(f"nats-py is missing and `pip install nats-py` failed: {result.stderr.strip()[-300:]}")


def jetstream_ids(corp_id):
    """Every Nats-Msg-Id on subjects tagd.<corp_id>.> of stream TAGD, in stream order."""
    nats = import_nats()
    from nats.js.api import DeliverPolicy

    async def read():
        nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=3)
        try:
            js = nc.jetstream()
            info = await js.stream_info("TAGD", subjects_filter=f"tagd.{corp_id}.>")
            expected = sum((info.state.subjects or {}).values())
            ids = []
            if expected == 0:
                return ids
            sub = await js.subscribe(f"tagd.{corp_id}.>", stream="TAGD", ordered_consumer=True,
                                     headers_only=True, deliver_policy=DeliverPolicy.ALL)
            while True:
                msg = await sub.next_msg(timeout=10)
                ids.append((msg.headers or {}).get("Nats-Msg-Id"))
                if msg.metadata.num_pending == 0:
                    break
            await sub.unsubscribe()
            return ids
        finally:
            await nc.close()

    return asyncio.run(read())


def jetstream_purge(corp_ids):
    if not corp_ids:
        return
    nats = import_nats()

    async def purge():
        nc = await nats.connect(NATS_URL, connect_timeout=5, max_reconnect_attempts=3)
        try:
            jsm = nc.jsm()
            for corp_id in corp_ids:
                await jsm.purge_stream("TAGD", subject=f"tagd.{corp_id}.>")
        finally:
            await nc.close()

    asyncio.run(purge())


# ---------------------------------------------------------------------------------------------
# The TCP proxy between tagd and PostgreSQL (pg_conn_cut)


class Proxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.lock = threading.Lock()
        self.sockets = set()
        self.listener = None
        self.accepting = None
        self.open()

    def open(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.listener, self.running = listener, True
        self.accepting = threading.Thread(target=self.accept_loop, args=(listener,), daemon=True)
        self.accepting.start()

    def accept_loop(self, listener):
        while self.running:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                self.sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    def pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.lock:
            for s in (source, sink):
                if s in self.sockets:
                    self.sockets.discard(s)
                    s.close()

    def cut(self):
        """Refuse new connections (nothing listens) and reset every proxied one."""
        self.running = False
        self.accepting.join()
        self.listener.close()
        with self.lock:
            victims, self.sockets = list(self.sockets), set()
        for s in victims:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        return len(victims) // 2

    def close(self):
        if self.running:
            self.cut()


# ---------------------------------------------------------------------------------------------
# The webhook receiver (webhook_receiver_down)


class Receiver:
    """Answers 503 while `down`, 204 otherwise; keeps the webhook-id of every 2xx answered."""

    def __init__(self):
        self.down = False
        self.lock = threading.Lock()
        self.delivered = set()
        self.answers = collections.Counter()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", "0")))
                status = 503 if receiver.down else 204
                with receiver.lock:
                    receiver.answers[str(status)] += 1
                    if status == 204:
                        receiver.delivered.add(self.headers.get("webhook-id"))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def got(self):
        with self.lock:
            return set(self.delivered)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# tagd


class Server:
    def __init__(self, binary, database, port, log_path, extra, state_dir):
        self.binary, self.database, self.port = binary, database, port
        self.log_path, self.extra, self.state_dir = log_path, extra, state_dir
        self.process = None
        self.spawned_at = None

    def start(self):
        env = {**os.environ, "TAGD_ADMIN_TOKEN": ADMIN_TOKEN, "TAGD_LOG_FORMAT": "json",
               "TAGD_LOG": os.environ.get("TAGD_FAULTS_LOG", "info,sqlx=warn")}
        out = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(self.binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--database", self.database,
             "--rate-limit-per-sec", "1000000", "--rate-limit-burst", "1000000", *self.extra],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.spawned_at = time.monotonic()
        if self.state_dir:
            with open(self.state_dir / "tagd.pids", "a") as pids:
                pids.write(f"{self.process.pid}\n")
        return self.spawned_at

    def ready(self):
        if self.process.poll() is not None:
            raise Failure(f"tagd exited with {self.process.returncode} (log {self.log_path})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return r.status == 200
        except (OSError, http.client.HTTPException):
            return False

    def wait_ready(self, timeout=60):
        wait_until("tagd answering /readyz", self.ready, timeout)

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout=30):
        """SIGTERM; True when it exited within `timeout` (else it is killed)."""
        if self.process is None or self.process.poll() is not None:
            return True
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False

    def call(self, method, path, body=None, headers=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data, method=method,
                                         headers={"content-type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.headers, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode(errors="replace")

    def v5(self, method, path, body=None, headers=None):
        status, response_headers, answer = self.call(method, path, body, headers)
        if status != 200 or not isinstance(answer, dict) or answer.get("code") != 0:
            raise Failure(f"{method} {path}: {status} {answer}")
        return response_headers, answer["data"]

    def log_summary(self):
        """(panics, {level: count}, the last warning/error messages)."""
        levels, last, panics = collections.Counter(), [], 0
        try:
            lines = Path(self.log_path).read_text(errors="replace").splitlines()
        except OSError:
            return 0, levels, last
        for line in lines:
            if "panicked" in line:
                panics += 1
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            level = str(entry.get("level", "")).upper()
            levels[level] += 1
            if level in ("WARN", "ERROR"):
                fields = entry.get("fields", {})
                last.append(f"{level} {fields.get('message', '')} "
                            + " ".join(f"{k}={v}" for k, v in fields.items() if k != "message")[:300])
        return panics, levels, last


# ---------------------------------------------------------------------------------------------
# The load


class Load:
    """THREADS writers, each paced to `rate` assigns a second on its own keep-alive connection,
    and `readers` readers of user/tags/list; every answer's status is kept."""

    def __init__(self, port, headers, corp_id, group, rate, per_thread, readers=0):
        self.port, self.corp_id, self.group = port, corp_id, group
        self.headers = {"content-type": "application/json", **headers}
        self.rate, self.per_thread, self.readers = rate, per_thread, readers
        self.records = []  # (thread, seq, status, answered at, seconds it took)
        self.reads = collections.Counter()
        self.samples = {}  # status -> the first body seen with it
        self.messages = collections.Counter()  # (status, msg) of the answers other than 200
        self.unknown_at = []  # when 503s saying "whether it was applied is unknown" were answered
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.watch_from = None
        self.first_ok = None
        self.exhausted = 0
        self.no_retry_after = 0  # 503s without a Retry-After header
        self.progress = [0] * THREADS  # each writer's next seq
        self.threads = []

    def start(self):
        for t in range(THREADS):
            self.threads.append(threading.Thread(target=self.writer, args=(t,), daemon=True))
        for r in range(self.readers):
            self.threads.append(threading.Thread(target=self.reader, daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=CLIENT_TIMEOUT + 5)

    def watch(self, since):
        """From now on, note the first 200 answered at or after `since`."""
        with self.lock:
            self.watch_from = since
            self.first_ok = None
            for _, _, status, at, _ in self.records:
                if status == "200" and at >= since and (self.first_ok is None or at < self.first_ok):
                    self.first_ok = at

    def exchange(self, conn, method, path, body):
        """(status word, body bytes, connection to use next)."""
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)
            conn.request(method, path, body, self.headers)
            response = conn.getresponse()
            data = response.read()
            status = str(response.status)
            if response.status == 503 and response.getheader("retry-after") is None:
                with self.lock:
                    self.no_retry_after += 1
            if response.status == 200:
                try:
                    code = json.loads(data).get("code")
                except ValueError:
                    code = "not-json"
                if code != 0:
                    status = f"200/{code}"
            if response.will_close:
                conn.close()
                conn = None
            return status, data, conn
        except (socket.timeout, TimeoutError):
            word = "timeout"
        except (OSError, http.client.HTTPException):
            word = "conn"
        if conn is not None:
            conn.close()
        return word, b"", None

    def paced(self, rate):
        interval = 1.0 / rate
        next_at = time.monotonic()
        while not self.stopping.is_set():
            now = time.monotonic()
            if next_at > now:
                time.sleep(next_at - now)
            next_at = max(next_at + interval, time.monotonic() - interval)
            yield

    def writer(self, t):
        conn = None
        path = "/api/v5/entity/user/tags/assign"
        for seq, _ in enumerate(self.paced(self.rate)):
            if seq >= self.per_thread:
                self.exhausted += 1
                break
            body = json.dumps({"corp_id": self.corp_id, "tags_group_id": self.group,
                               "user_id": f"f{t}-{seq}", "value": str(seq)})
            sent = time.monotonic()
            status, data, conn = self.exchange(conn, "POST", path, body)
            at = time.monotonic()
            with self.lock:
                self.records.append((t, seq, status, at, at - sent))
                if status == "200" and self.watch_from is not None and at >= self.watch_from \
                        and self.first_ok is None:
                    self.first_ok = at
                if status != "200":
                    if status not in self.samples:
                        self.samples[status] = data[:300].decode(errors="replace")
                    try:
                        msg = json.loads(data).get("msg")
                    except (ValueError, AttributeError):
                        msg = None
                    self.messages[(status, msg)] += 1
                    if msg and "is unknown" in msg:
                        self.unknown_at.append(at)
            self.progress[t] = seq + 1
            if status in ("conn", "timeout"):
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def reader(self):
        conn = None
        for _ in self.paced(20):
            t = random.randrange(THREADS)
            seq = random.randrange(max(1, self.progress[t]))
            path = f"/api/v5/entity/user/tags/list?corp_id={self.corp_id}&user_id=f{t}-{seq}"
            status, data, conn = self.exchange(conn, "GET", path, None)
            with self.lock:
                self.reads[status] += 1
                if status != "200" and f"read {status}" not in self.samples:
                    self.samples[f"read {status}"] = data[:300].decode(errors="replace")
        if conn is not None:
            conn.close()

    def statuses(self, since=None, until=None):
        return collections.Counter(status for _, _, status, at, _ in self.records
                                   if (since is None or at >= since) and (until is None or at < until))

    def longest_gap(self, since, until):
        """The longest time without a 200 answered, between `since` and `until`."""
        times = sorted(at for _, _, status, at, _ in self.records if status == "200" and since <= at <= until)
        edges = [since] + times + [until]
        return max(b - a for a, b in zip(edges, edges[1:]))

    def acked(self):
        return {(t, seq) for t, seq, status, _, _ in self.records if status == "200"}

    def slowest(self):
        """(seconds, status) of the slowest answer, and how many took over 5 s."""
        worst = max(((took, status) for _, _, status, _, took in self.records), default=(0.0, "none"))
        return worst, sum(1 for r in self.records if r[4] > 5)


# ---------------------------------------------------------------------------------------------
# One fault


class Run:
    """What the whole run shares: options, work directory, and everything to undo."""

    def __init__(self, args):
        self.args = args
        self.mode = MODES["quick" if args.quick else "full"]
        self.binary = args.binary
        self.state_dir = Path(args.state_dir) if args.state_dir else None
        self.work = Path(tempfile.mkdtemp(prefix="tagd-faults-", dir=os.environ.get("TAGD_FAULTS_DIR", "/var/tmp")))
        self.schemas = []
        self.mounts = []
        self.servers = []
        self.proxies = []
        self.receivers = []
        self.nats = Nats(self.state_dir)
        self.nats_corps = []
        self.failures = []
        self.lines = []
        if self.state_dir and not args.keep:
            (self.state_dir / "work").write_text(str(self.work))

    def note(self, kind, value):
        """Tells bench/faults.sh's trap what to undo should this process die."""
        if self.state_dir:
            with open(self.state_dir / kind, "a") as f:
                f.write(f"{value}\n")

    # -- clean-up ---------------------------------------------------------------------------

    def cleanup(self):
        for server in self.servers:
            try:
                if server.process and server.process.poll() is None:
                    server.process.kill()
                    server.process.wait(timeout=10)
            except Exception as e:  # noqa: BLE001 - clean-up goes on
                log(f"clean-up: tagd {server.port}: {e}")
        for thing in self.proxies + self.receivers:
            try:
                thing.close()
            except Exception as e:  # noqa: BLE001
                log(f"clean-up: {e}")
        for mount in self.mounts:
            if sh(["mountpoint", "-q", str(mount)], check=False).returncode == 0:
                if sh(["umount", str(mount)], check=False).returncode != 0:
                    sh(["umount", "-l", str(mount)], check=False)
        for step in (self.nats.start, ensure_postgres_up):
            try:
                step()
            except Exception as e:  # noqa: BLE001
                log(f"clean-up: {e}")
                self.failures.append(f"clean-up: {e}")
        try:
            jetstream_purge(self.nats_corps)
        except Exception as e:  # noqa: BLE001
            log(f"clean-up: could not purge this run's subjects from stream TAGD: {e}")
        for schema in self.schemas:
            psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE", check=False)
        if self.args.keep:
            log(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- one fault --------------------------------------------------------------------------

    def users_per_thread(self, hold):
        """Enough fresh users for the longest this fault's load can run at the paced rate."""
        m = self.mode
        return int(m["rate"] * (m["before"] + hold + RECOVERY_CAP + m["after"] + 15)) + 10

    def prepare(self, cli_url, per_thread):
        """An organization, an app and the load's users, with the CLI (tagd not running)."""
        def cli(*args):
            out = sh([str(self.binary), "--database", cli_url, *args]).stdout
            return json.loads(out) if out.strip() else None
        corp_id = cli("org", "create", "--name", "faults")["corp_id"]
        app = cli("app", "create", "--corp-id", corp_id, "--name", "faults")
        users = self.work / "users.csv"
        with open(users, "w") as out:
            out.write("user_id\n")
            for t in range(THREADS):
                out.write("".join(f"f{t}-{s}\n" for s in range(per_thread)))
        sh([str(self.binary), "--database", cli_url, "import", "--corp-id", corp_id, "--progress-every", "0",
            str(users)])
        if cli_url.startswith("sqlite://"):
            # The import's WAL is left at its high-water mark: start the server without it.
            with sqlite3.connect(cli_url.removeprefix("sqlite://")) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return corp_id, app

    def run(self, name, backend):
        m = self.mode
        label = f"{name}-{backend}"
        hold = {"pg_conn_cut": m["conn_cut"], "sqlite_disk_full": m["disk_full"], "nats_down": m["nats_down"],
                "webhook_receiver_down": m["webhook_down"]}.get(name, 5)
        if self.args.hold is not None and name in ("pg_conn_cut", "sqlite_disk_full", "nats_down",
                                                   "webhook_receiver_down"):
            hold = self.args.hold
        per_thread = self.users_per_thread(hold)
        extra, proxy, receiver, mount = [], None, None, None
        if backend == "sqlite":
            if name == "sqlite_disk_full":
                mount = self.work / "tmpfs"
                mount.mkdir()
                sh(["mount", "-t", "tmpfs", "-o", f"size={m['tmpfs_mb']}m", "tmpfs", str(mount)])
                self.mounts.append(mount)
                self.note("mounts", mount)
                db_path = mount / "tagd.db"
            else:
                db_path = self.work / f"{label}.db"
            cli_url = serve_url = f"sqlite://{db_path}"
        else:
            schema = f"tagd_faults_{os.getpid()}_{name}"
            psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
            self.schemas.append(schema)
            self.note("schemas", schema)
            cli_url = serve_url = pg_schema_url(schema)
            if name == "pg_conn_cut":
                _, host, port = pg_url_parts()
                proxy = Proxy(host, port)
                self.proxies.append(proxy)
                serve_url = pg_schema_url(schema, proxy.port)
        if name == "nats_down":
            extra += ["--nats-url", NATS_URL]
        if name == "webhook_receiver_down":
            extra += ["--webhook-allow-private", "--webhook-retry-schedule", WEBHOOK_SCHEDULE]

        corp_id, app = self.prepare(cli_url, per_thread)
        if name == "nats_down":
            self.nats_corps.append(corp_id)
        server = Server(self.binary, serve_url, free_port(), self.work / f"tagd-{label}.log", extra, self.state_dir)
        self.servers.append(server)
        server.start()
        server.wait_ready()
        _, token = server.v5("POST", "/api/v5/auth/token", {"app_id": app["app_id"], "app_secret": app["app_secret"]})
        headers = {"authorization": f"Bearer {token['access_token']}", "x-app-id": app["app_id"]}
        if name == "webhook_receiver_down":
            receiver = Receiver()
            self.receivers.append(receiver)
            server.v5("POST", "/api/v5/webhooks/create", {"corp_id": corp_id, "url": receiver.url, "event_types": [],
                                                          "description": "bench/faults.py"}, headers)
        group_headers, group = server.v5("POST", "/api/v5/entity/tags/group/create", {
            "name": "faults", "variable_name": "faults", "description": "", "attribute": "number",
            "category": "faults", "corp_id": corp_id}, headers)
        group_id = group["tags_group_id"]
        first_version = int(group_headers.get("X-Tagd-Version", "0"))
        if receiver:
            # The endpoint is live: it got the group's creation, the first event it must get.
            wait_until("the first webhook delivery", lambda: receiver.got(), 30)

        load = Load(server.port, headers, corp_id, group_id, m["rate"], per_thread,
                    readers=2 if name == "sqlite_disk_full" else 0)
        extras, notes = [], []
        started = time.monotonic()
        load.start()
        try:
            time.sleep(m["before"])
            fault_start = time.monotonic()
            fault_end = self.inject(name, server, proxy, receiver, mount, hold, notes)
            load.watch(fault_end)
            try:
                wait_until("the first 200 after the fault", lambda: load.first_ok, RECOVERY_CAP)
            except Failure:
                pass
            if load.first_ok is not None:
                time.sleep(m["after"])
        finally:
            load.stop()
        first_ok = load.first_ok
        during = load.statuses(fault_start, fault_end)
        if mount:
            notes.append(f"after the load: {sqlite_files(mount)}")
        if first_ok is not None:
            notes.append(f"longest time without a 200: {load.longest_gap(fault_start - 1, first_ok + 1):.2f} s")
        (took, status), over_5s = load.slowest()
        notes.append(f"slowest answer {took:.2f} s ({status}), {over_5s} over 5 s")
        log(f"{label}: fault held {fault_end - fault_start:.1f} s; answers while it lasted: {counts_text(during)}"
            + (f"; {'; '.join(notes)}" if notes else ""))
        if load.exhausted:
            notes.append(f"{load.exhausted} threads ran out of users")

        # Events, while tagd still runs.
        if name == "nats_down":
            extras.append(f"events_missing={self.check_nats(server, corp_id, headers, backend, cli_url, notes)}")
        if name == "webhook_receiver_down":
            missing = self.check_webhook(server, corp_id, headers, receiver, first_version, notes)
            extras.append(f"events_missing={missing}")

        stopped = server.stop()
        if not stopped:
            self.failures.append(f"{label}: tagd did not stop within 30 s of SIGTERM")
        acked = load.acked()
        stored = self.stored_values(backend, db_path if backend == "sqlite" else None,
                                    None if backend == "sqlite" else schema, corp_id, group_id)
        lost = sorted(k for k in acked if stored.get(f"f{k[0]}-{k[1]}") != float(k[1]))
        if name == "sqlite_disk_full":
            integrity = self.integrity(db_path)
            extras = [f"reads={counts_text(load.reads)}", f"integrity={integrity}"] + extras
            if integrity != "ok":
                self.failures.append(f"{label}: integrity_check says {integrity}")
            bad_reads = {s: n for s, n in load.reads.items() if s != "200"}
            if bad_reads:
                self.failures.append(f"{label}: reads failed while the disk was full: {bad_reads}")
            sh(["umount", str(mount)], check=False)

        statuses = load.statuses()
        recovered = f"{first_ok - fault_end:.2f}" if first_ok is not None else "never"
        line = (f"FAULT {name} backend={backend} requests={sum(statuses.values())} status={counts_text(statuses)} "
                f"acked_lost={len(lost)} first_success_after={recovered}" + "".join(f" {e}" for e in extras))
        print(line, flush=True)
        self.lines.append((name, backend, line, notes, time.monotonic() - started))

        # Verdicts.
        if lost:
            self.failures.append(f"{label}: {len(lost)} acknowledged writes lost, e.g. "
                                 + ", ".join(f"f{t}-{s}" for t, s in lost[:5]))
        # 503 (with Retry-After) is the answer to a fault; a refused or reset connection is what a
        # killed process gives. Anything else (a 500, a 4xx to a valid write, no answer in 10 s)
        # is a fault of tagd.
        unexpected = {s: n for s, n in statuses.items() if s not in ("200", "503", "conn")}
        if unexpected:
            self.failures.append(f"{label}: unexpected answers {unexpected}")
        if name == "pg_conn_cut":
            # While the proxy refuses every connection no write can be committing: a write whose
            # COMMIT was on a connection the cut reset is answered at once, not a second later.
            wrong = sum(1 for at in load.unknown_at if fault_start + 1 < at < fault_end)
            if wrong:
                self.failures.append(f"{label}: {wrong} answers 503 'whether it was applied is unknown' while no "
                                     "connection to PostgreSQL could exist (nothing can have been applied)")
        if load.no_retry_after:
            self.failures.append(f"{label}: {load.no_retry_after} answers 503 without Retry-After")
        if first_ok is None:
            self.failures.append(f"{label}: no write succeeded within {RECOVERY_CAP:.0f} s after the fault ended")
        for (status, msg), n in sorted(load.messages.items(), key=lambda i: (i[0][0], str(i[0][1]))):
            if msg is not None:
                log(f"{label}: {n} answers {status}: {msg}")
        for status, body in sorted(load.samples.items()):
            if not any(s == status and m is not None for s, m in load.messages):
                log(f"{label}: first {status} answer: {body.strip() or '(none)'}")
        panics, levels, last = server.log_summary()
        log(f"{label}: tagd log {dict(levels)}; last warnings/errors: " + (" | ".join(last[-4:]) or "none"))
        if panics:
            self.failures.append(f"{label}: tagd panicked ({panics} lines, see {server.log_path})")
        return line

    # -- the faults -------------------------------------------------------------------------

    def inject(self, name, server, proxy, receiver, mount, hold, notes):
        """Injects the fault, waits for its end, returns that moment (monotonic)."""
        if name in ("pg_restart", "pg_kill9"):
            monitor = PgMonitor()
            started = time.monotonic()
            if name == "pg_restart":
                pg_ctl("restart")
                notes.append(f"pg_ctlcluster restart returned after {time.monotonic() - started:.1f} s")
            else:
                pid = int(Path(f"/var/lib/postgresql/{pg_version()}/main/postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
                wait_until("the postmaster to die", lambda: not Path(f"/proc/{pid}").exists(), 10)
                ensure_postgres_up()
                notes.append(f"killed postmaster {pid}, started again in {time.monotonic() - started:.1f} s")
            wait_until("PostgreSQL accepting connections", pg_accepting, 60)
            time.sleep(0.1)
            monitor.stop()
            outage = monitor.outage()
            if outage is None or outage[1] is None:
                notes.append("no refusal seen by the 50 ms probe")
                return time.monotonic()
            notes.append(f"PostgreSQL refused connections for {outage[1] - outage[0]:.1f} s")
            return outage[1]
        if name == "pg_conn_cut":
            notes.append(f"{proxy.cut()} connections cut")
            time.sleep(hold)
            proxy.open()
            return time.monotonic()
        if name == "sqlite_disk_full":
            free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
            if free < 8 << 20:
                raise Failure(f"the tmpfs was nearly full before the fault ({free / 2**20:.1f} MiB free; "
                              f"{sqlite_files(mount)}): the load's data does not fit")
            notes.append(f"before: {sqlite_files(mount)}")
            filled = fill(mount / "filler")
            notes.append(f"filler {filled / 2**20:.1f} MiB")
            time.sleep(hold)
            notes.append(f"full: {sqlite_files(mount)}")
            (mount / "filler").unlink()
            return time.monotonic()
        if name == "tagd_kill9":
            server.kill9()
            return server.start()
        if name == "nats_down":
            self.nats.stop()
            time.sleep(hold)
            self.nats.start()
            return time.monotonic()
        if name == "webhook_receiver_down":
            receiver.down = True
            time.sleep(hold)
            receiver.down = False
            return time.monotonic()
        raise Failure(f"unknown fault {name}")

    # -- checks ----------------------------------------------------------------------------

    def stored_values(self, backend, db_path, schema, corp_id, group_id):
        """{user_id: number_value} of the live assignments of the load's group."""
        sql = ("SELECT u.user_id, a.number_value FROM tag_assignments a "
               "JOIN organizations o ON o.id = a.org_id "
               "JOIN tag_groups g ON g.org_id = a.org_id AND g.id = a.group_ref "
               "JOIN users u ON u.org_id = a.org_id AND u.id = a.user_ref "
               "WHERE o.corp_id = '{corp}' AND g.entity_id = '{group}' AND {live}")
        if backend == "sqlite":
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
                rows = db.execute(sql.format(corp=corp_id, group=group_id, live="a.is_deleted = 0")).fetchall()
            return {user: value for user, value in rows}
        out = psql(sql.format(corp=corp_id, group=group_id, live="NOT a.is_deleted"), schema=schema).stdout
        return {user: float(value) for user, value in (line.split("|") for line in out.split())}

    def integrity(self, db_path):
        with sqlite3.connect(str(db_path)) as db:
            rows = db.execute("PRAGMA integrity_check").fetchall()
        return "ok" if rows == [("ok",)] else "|".join(r[0] for r in rows[:5])

    def feed(self, server, corp_id, headers):
        """Every event of the organization's change feed: [(version, id)]."""
        events, after = [], 0
        while True:
            _, data = server.v5("GET", f"/api/v5/changes?corp_id={corp_id}&after_version={after}&limit=1000",
                                headers=headers)
            events += [(row["version"], row["id"]) for row in data["rows"]]
            if not data["rows"]:
                return events
            after = data["version"]

    def sink_position(self, backend, cli_url, corp_id):
        sql = ("SELECT COALESCE(MAX(s.delivered_version), 0) FROM event_sinks s JOIN organizations o "
               f"ON o.id = s.org_id WHERE o.corp_id = '{corp_id}' AND s.sink = 'nats'")
        if backend == "sqlite":
            with sqlite3.connect(f"file:{cli_url.removeprefix('sqlite://')}?mode=ro", uri=True) as db:
                return db.execute(sql).fetchone()[0]
        schema = urllib.parse.unquote(cli_url).rsplit("search_path=", 1)[1]
        return int(psql(sql, schema=schema).stdout.strip() or 0)

    def check_nats(self, server, corp_id, headers, backend, cli_url, notes):
        import_nats()
        events = self.feed(server, corp_id, headers)
        head = max(v for v, _ in events)
        started = time.monotonic()
        try:
            wait_until("tagd's NATS position to reach the feed's head",
                       lambda: self.sink_position(backend, cli_url, corp_id) >= head, self.mode["events_cap"], 0.5)
        except Failure as e:
            notes.append(str(e))
        ids = jetstream_ids(corp_id)
        feed_ids = {i for _, i in events}
        missing = len(feed_ids - set(ids))
        extra = len(set(ids) - feed_ids)
        repeats = len(ids) - len(set(ids))
        log(f"nats_down: feed {len(events)} events; JetStream {len(ids)} messages on tagd.{corp_id}.> "
            f"({repeats} repeated ids, {extra} not in the feed); caught up {time.monotonic() - started:.1f} s "
            "after the load stopped")
        notes.append(f"{len(events)} events, {len(ids)} messages, {repeats} repeats")
        if missing or extra:
            self.failures.append(f"nats_down: {missing} feed events missing from JetStream, {extra} unknown")
        return missing

    def check_webhook(self, server, corp_id, headers, receiver, first_version, notes):
        events = [(v, i) for v, i in self.feed(server, corp_id, headers) if v >= first_version]
        wanted = {i for _, i in events}
        started = time.monotonic()
        try:
            wait_until("every event at the receiver", lambda: wanted <= receiver.got(), self.mode["events_cap"], 0.2)
        except Failure as e:
            notes.append(str(e))
        missing = len(wanted - receiver.got())
        log(f"webhook_receiver_down: {len(wanted)} events from the endpoint's first (version {first_version}); "
            f"receiver answered {counts_text(receiver.answers)}; all there {time.monotonic() - started:.1f} s "
            "after the load stopped" + (f"; {missing} missing" if missing else ""))
        notes.append(f"{len(wanted)} events, receiver answered {counts_text(receiver.answers)}")
        if missing:
            self.failures.append(f"webhook_receiver_down: {missing} events never reached the receiver")
        return missing


def sqlite_files(directory):
    """`tagd.db 10.9 MiB, tagd.db-wal 36.8 MiB`: the sizes of the database's files."""
    return ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB" for p in sorted(Path(directory).glob("tagd.db*"))
                     if not p.name.endswith("-shm"))


def fill(path):
    """Writes zeros to `path` until the file system is full; returns the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12):
            block = b"\0" * chunk
            while True:
                try:
                    written += f.write(block)
                except OSError:
                    break
    return written


def plan(backends, only):
    """[(fault, backend)] in the order they run."""
    out = []
    if "sqlite" in backends:
        out += [("sqlite_disk_full", "sqlite"), ("tagd_kill9", "sqlite")]
    if "postgres" in backends:
        out += [("pg_restart", "postgres"), ("pg_kill9", "postgres"), ("pg_conn_cut", "postgres"),
                ("tagd_kill9", "postgres")]
    out.append(("nats_down", "postgres" if "postgres" in backends else "sqlite"))
    out.append(("webhook_receiver_down", "sqlite" if "sqlite" in backends else "postgres"))
    return [(f, b) for f, b in out if not only or f in only]


def main():
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short phases, for CI (a few minutes)")
    parser.add_argument("--binary", help="tagd to run (default target/release/tagd, else target/debug/tagd)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--only", default="", help=f"comma-separated faults: {','.join(ALL_FAULTS)}")
    parser.add_argument("--threads", type=int, default=THREADS, help=f"writer threads (default {THREADS})")
    parser.add_argument("--hold", type=float, help="seconds the connection cut, the full disk, NATS and the "
                        "receiver stay down (default: by mode)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (databases, tagd logs)")
    parser.add_argument("--state-dir", help=argparse.SUPPRESS)  # bench/faults.sh's trap reads it
    args = parser.parse_args()

    if args.binary:
        binary = Path(args.binary)
        if not binary.is_absolute():
            binary = Path.cwd() / binary
    else:
        binary = next((b for b in (ROOT / "target/release/tagd", ROOT / "target/debug/tagd") if b.exists()),
                      ROOT / "target/release/tagd")
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        sys.exit(f"faults: {binary} is missing; build it first (`cargo build -p tagd` for target/debug/tagd, "
                 "`cargo build --release -p tagd` for target/release/tagd)")
    args.binary = binary
    THREADS = args.threads
    backends = [b for b in args.backends.split(",") if b]
    only = {f for f in args.only.split(",") if f}
    if set(backends) - {"sqlite", "postgres"} or only - set(ALL_FAULTS):
        sys.exit(f"faults: backends are sqlite,postgres; faults are {','.join(ALL_FAULTS)}")
    todo = plan(backends, only)
    if not todo:
        sys.exit("faults: nothing to run with these --backends and --only")
    if os.geteuid() != 0 and any(f in ("sqlite_disk_full", "pg_restart", "pg_kill9", "nats_down") for f, _ in todo):
        sys.exit("faults: run as root (mounts a tmpfs, restarts PostgreSQL and NATS)")
    if "postgres" in backends or any(f.startswith("pg_") for f, _ in todo):
        ensure_postgres_up()
    if any(f == "nats_down" for f, _ in todo):
        import_nats()
        if not port_open(NATS_HOST, NATS_PORT):
            sys.exit(f"faults: nothing listens on {NATS_HOST}:{NATS_PORT} (start nats-server -js first)")

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)

    run = Run(args)
    started = time.monotonic()
    log(f"{'quick' if args.quick else 'full'} run of {len(todo)} faults with {binary}; work {run.work}")
    try:
        for name, backend in todo:
            try:
                run.run(name, backend)
            except Exception as e:  # noqa: BLE001 - the next fault still runs, and the run fails
                reason = str(e) if isinstance(e, Failure) else f"{type(e).__name__}: {e}"
                run.failures.append(f"{name}-{backend}: {reason}")
                print(f"FAULT {name} backend={backend} error={json.dumps(reason)}", flush=True)
                for server in run.servers:
                    if server.process and server.process.poll() is None:
                        server.process.kill()
                        server.process.wait()
                ensure_postgres_up()
                run.nats.start()
    except KeyboardInterrupt:
        run.failures.append("interrupted")
    finally:
        run.cleanup()
    log(f"{len(run.lines)} faults in {time.monotonic() - started:.0f} s")
    if run.failures:
        for failure in run.failures:
            print(f"FAILED {failure}", file=sys.stderr, flush=True)
        sys.exit(1)
    log("every fault passed")


if __name__ == "__main__":
    main()
