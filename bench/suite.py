#!/usr/bin/env python3
"""The benchmark suite behind bench/run.sh (issue 6). Standard library only.

Every workload runs against tagd on SQLite, tagd on PostgreSQL and its peer, one after
another on the same machine, and prints
    W<n> <name> tagd_<backend>=<value><unit> <peer>=<value><unit> ratio=<x.xx>
where ratio is tagd's value divided by the peer's. The data comes from a fixed seed (the
values are a function of the row number), so two runs load the same rows.
"""

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import audiences
import console
import events
import expiry
import servers

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# TAGD_BENCH_BINARY runs another build (two builds compared in turns on this noisy machine).
TAGD = Path(os.environ.get("TAGD_BENCH_BINARY", ROOT / "target" / "release" / "tagd"))
PG_URL = os.environ.get("TAGD_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
TAGD_PORT, REDIS_PORT, WEBDIS_PORT = 18090, 16379, 17379
TAGS_PER_USER = 10
# The ten tag groups every user gets one of each: four define, three number, three string.
GROUPS = [(f"t{i}", "define" if i < 4 else "number" if i < 7 else "string") for i in range(10)]
CITIES = ["Pune", "Delhi", "Mumbai", "Chennai", "Kolkata", "Jaipur", "Surat", "Indore"]
W2_LABELS = 100
ALL_WORKLOADS = "W1,W2,W3,W4,W5,W6,W7,W8,W9,W10,W11,W12"
# tagd refuses an operator-set admin token under 32 characters.
BENCH_ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"


def log(message):
    print(f"# {message}", file=sys.stderr, flush=True)


def sh(args, **kwargs):
    kwargs.setdefault("check", True)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(args, **kwargs)


def answers(url):
    try:
        urllib.request.urlopen(url, timeout=1).read()
        return True
    except OSError:
        return False


def wait_for(what, ready, seconds=10):
    """Polls `ready` until it is true; a peer that never comes up stops the run."""
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready in {seconds} s")
        time.sleep(0.05)


def timed(args, **kwargs):
    start = time.monotonic()
    result = sh(args, **kwargs)
    return time.monotonic() - start, result


# ---------------------------------------------------------------------------------------------
# Data: one CSV of users x tags, and its Redis and raw-SQL twins, all from the row number.


def value_of(user, tag):
    attribute = GROUPS[tag][1]
    if attribute == "define":
        return "True" if (user * 7 + tag) % 3 else "False"
    if attribute == "number":
        return f"{(user * 31 + tag * 17) % 100000}.5"
    return CITIES[(user + tag) % len(CITIES)]


def user_id(i):
    # Numeric, so the same users serve v2 (whose customer ids are numbers) and v5.
    return str(1_000_000 + i)


def write_import_csv(path, users):
    with open(path, "w") as out:
        out.write("user_id,variable_name,value\n")
        for i in range(users):
            uid = user_id(i)
            out.write("".join(f"{uid},{GROUPS[t][0]},{value_of(i, t)}\n" for t in range(TAGS_PER_USER)))


# W8: two labels, one on every user and one on every other user, for label search by prefix.
W8_LABELS = [("Premium Gold", "w8_premium", 1), ("Silver Club", "w8_silver", 2)]


def write_w8_csv(path, users):
    with open(path, "w") as out:
        out.write("user_id,variable_name,value\n")
        for variable, every in ((v, e) for _, v, e in W8_LABELS):
            out.write("".join(f"{user_id(i)},{variable},True\n" for i in range(0, users, every)))


def write_redis_commands(path, users):
    """RESP for redis-cli --pipe: one set per user, one member `variable=value` per tag."""

    def resp(*parts):
        return f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts)

    with open(path, "w") as out:
        for i in range(users):
            members = [f"{GROUPS[t][0]}={value_of(i, t)}" for t in range(TAGS_PER_USER)]
            out.write(resp("SADD", f"user:{user_id(i)}", *members))


# ---------------------------------------------------------------------------------------------
# tagd


class Tagd:
    """One backend: its database URL, the organization the suite made, and a server."""

    def __init__(self, backend, database, work):
        self.backend, self.database, self.work = backend, database, work
        self.server = None

    def cli(self, *args, env=None):
        result = sh([str(TAGD), "--database", self.database, *args], env={**os.environ, **(env or {})})
        return json.loads(result.stdout) if result.stdout.strip() else None

    def start(self, *extra):
        """The server; `extra` are more `serve` flags (W10's `--nats-url`)."""
        env = {**os.environ, "TAGD_ADMIN_TOKEN": BENCH_ADMIN_TOKEN, "TAGD_LOG": "warn"}
        self.started = time.monotonic()
        self.server = subprocess.Popen(
            [str(TAGD), "serve", "--listen", f"127.0.0.1:{TAGD_PORT}", "--database", self.database,
             "--rate-limit-per-sec", "10000000", "--rate-limit-burst", "10000000", *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.work / f"tagd-{self.backend}.log", "a"))
        wait_for(f"tagd on {self.backend}", lambda: answers(f"http://127.0.0.1:{TAGD_PORT}/readyz"))

    def stop(self):
        if self.server:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=60)
            self.server = None

    def metric(self, name):
        text = urllib.request.urlopen(f"http://127.0.0.1:{TAGD_PORT}/metrics").read().decode()
        found = re.search(rf"^{name} (\d+)$", text, re.M)
        return int(found.group(1)) if found else 0

    def wait_for_index(self):
        """Seconds from the server's start until its index holds the organization."""
        wait_for(f"the index on {self.backend}", lambda: self.metric("tagd_index_organizations_loaded") >= 1,
                 seconds=600)
        return time.monotonic() - self.started

    def rss_bytes(self):
        status = Path(f"/proc/{self.server.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024

    def call(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{TAGD_PORT}{path}", data, method=method,
            headers={"content-type": "application/json", **(headers or {})})
        return json.loads(urllib.request.urlopen(request).read())

    def prepare(self):
        """The organization, an app, a v2 credential, the ten tag groups, W1's group and
        W2's hundred labels."""
        self.corp_id = self.cli("org", "create", "--name", "bench")["corp_id"]
        app = self.cli("app", "create", "--corp-id", self.corp_id, "--name", "bench")
        self.cli("credential", "create", "--corp-id", self.corp_id, "--username", "bench",
                 env={"TAGD_CREDENTIAL_PASSWORD": "bench-password"})
        self.start()
        try:
            token = self.call("POST", "/api/v5/auth/token",
                              {"app_id": app["app_id"], "app_secret": app["app_secret"]})
            self.token, self.app_id = token["data"]["access_token"], app["app_id"]
            v5 = {"authorization": f"Bearer {self.token}", "x-app-id": self.app_id}
            self.groups = {}
            for variable, attribute in GROUPS + [("w1", "number")]:
                created = self.call("POST", "/api/v5/entity/tags/group/create", {
                    "name": variable, "variable_name": variable, "description": "",
                    "attribute": attribute, "category": "bench", "corp_id": self.corp_id}, v5)
                self.groups[variable] = created["data"]["tags_group_id"]
            for name, variable, _ in W8_LABELS:
                self.call("POST", "/api/v5/entity/tags/group/create", {
                    "name": name, "variable_name": variable, "description": "",
                    "attribute": "define", "category": "label", "corp_id": self.corp_id}, v5)
            labels = [{"name": f"label{i:03}"} for i in range(W2_LABELS)]
            self.call("POST", "/v2/organization/labels", {"orgLabels": labels},
                      {"authorization": "Basic YmVuY2g6YmVuY2gtcGFzc3dvcmQ="})
        finally:
            self.stop()

    def wrk_env(self, users):
        return {**os.environ, "TAGD_BENCH_TOKEN": self.token, "TAGD_BENCH_APP_ID": self.app_id,
                "TAGD_BENCH_CORP_ID": self.corp_id, "TAGD_BENCH_GROUP": self.groups["w1"],
                "TAGD_BENCH_NUMBER_GROUP": self.groups["t4"], "TAGD_BENCH_USERS": str(users),
                "TAGD_BENCH_USER_BASE": user_id(0),
                "TAGD_BENCH_AUTH": "Basic YmVuY2g6YmVuY2gtcGFzc3dvcmQ="}


def wrk(script, url, duration, env, connections=64, threads=2):
    result = sh(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
                 "-s", str(BENCH / script), url], env=env, cwd=ROOT)
    last = result.stdout.strip().splitlines()[-1]
    fields = dict(pair.split("=") for pair in last.split())
    if int(fields.get("errors", 0)) or int(fields.get("non2xx", 0)):
        log(f"{script}: {last}")
    # A load mostly refused measures the refusal, not the workload: no figure is better.
    if int(fields.get("non2xx", 0)) + int(fields.get("errors", 0)) > 0.01 * int(fields["requests"]):
        raise RuntimeError(f"{script}: more than 1% of the requests failed: {last}")
    return {k: float(v) for k, v in fields.items()}


# ---------------------------------------------------------------------------------------------
# Peers


class Redis:
    """A private redis-server with `appendfsync always`, and webdis in front of it."""

    def __init__(self, work):
        self.dir = work / "redis"
        self.dir.mkdir()
        self.server = subprocess.Popen(
            ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir),
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL)
        config = {"redis_host": "127.0.0.1", "redis_port": REDIS_PORT, "http_host": "127.0.0.1",
                  "http_port": WEBDIS_PORT, "threads": 2, "pool_size": 20, "daemonize": False,
                  "database": 0, "verbosity": 0, "logfile": str(self.dir / "webdis.log")}
        (self.dir / "webdis.json").write_text(json.dumps(config))
        self.webdis = None
        wait_for("redis-server", lambda: sh(["redis-cli", "-p", str(REDIS_PORT), "ping"],
                                            check=False).stdout.strip() == "PONG")

    def cli(self, *args):
        return sh(["redis-cli", "-p", str(REDIS_PORT), *args]).stdout

    def used_memory(self):
        info = self.cli("info", "memory")
        return int(re.search(r"used_memory:(\d+)", info).group(1))

    def start_webdis(self):
        self.webdis = subprocess.Popen(["webdis", str(self.dir / "webdis.json")], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        wait_for("webdis", lambda: answers(f"http://127.0.0.1:{WEBDIS_PORT}/PING"))

    def close(self):
        for process in (self.webdis, self.server):
            if process:
                process.terminate()
                process.wait(timeout=30)


def pg_schema_url(schema):
    return f"{PG_URL}?options=-c%20search_path%3D{schema}"


def psql(*args, schema=None, **kwargs):
    env = {**os.environ, "PGOPTIONS": f"-c search_path={schema} -c client_min_messages=warning"
           if schema else "-c client_min_messages=warning"}
    return sh(["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-qAt", *args], env=env, **kwargs)


def pgbench(script_sql, duration, clients=8, schema="bench_pgbench"):
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text(script_sql)
    env = {**os.environ, "PGOPTIONS": f"-c search_path={schema}"}
    result = sh(["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(duration), "-f", str(script),
                 PG_URL], env=env)
    script.unlink()
    return float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout).group(1))


# ---------------------------------------------------------------------------------------------
# The raw loads W3 compares with: the same rows tagd ends with (users, assignments and their
# first history entries), written straight into a copy of the same schema.

ASSIGNMENT_COLUMNS = ("org_id, entity_id, user_ref, group_ref, define_value, number_value, "
                      "string_value, executor_kind, executor_ref, executor_name, source, version, "
                      "ctime, mtime, is_deleted")
LOG_COLUMNS = ("org_id, version, kind, user_ref, group_ref, assignment_ref, subject_version, "
               "executor_kind, executor_ref, executor_name, source, old_value, new_value, at")


def raw_rows(users, org, group_refs):
    """(kind, row) for the users, assignments and change-log entries tagd's import ends with, as
    SQL-ready Python values; ids from 1, entity ids as tagd makes them (48 bits of
    milliseconds, then 80 random bits from a fixed seed)."""
    now = int(time.time())
    entity_ids = random.Random(42)
    millis = int(time.time() * 1000)
    for i in range(users):
        user_ref = i + 1
        yield "user", (user_ref, org, user_id(i), now)
        for t in range(TAGS_PER_USER):
            variable, attribute = GROUPS[t]
            value = value_of(i, t)
            ref = i * TAGS_PER_USER + t + 1
            define = (value == "True") if attribute == "define" else None
            number = float(value) if attribute == "number" else None
            string = value if attribute == "string" else None
            entity = f"{millis + ref // 1000:012x}{entity_ids.getrandbits(80):020x}"
            yield "assignment", (ref, org, entity, user_ref, group_refs[variable], define, number,
                                 string, "operator", 0, "import", "import", 0, now, now, False)
            # Versions above the entries `prepare` logged (groups, labels).
            yield "history", (org, 1000 + ref, "tag.assigned", user_ref, group_refs[variable], ref, 0,
                              "operator", 0, "import", "import", None, value, now)


def csv_field(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def write_copy_files(work, rows):
    files = {kind: open(work / f"copy_{kind}.csv", "w") for kind in ("user", "assignment", "history")}
    for kind, row in rows:
        files[kind].write(",".join(csv_field(v) for v in row) + "\n")
    for f in files.values():
        f.close()


def sql_literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


def write_sqlite_inserts(path, rows):
    tables = {"user": "users (id, org_id, user_id, ctime)",
              "assignment": f"tag_assignments (id, {ASSIGNMENT_COLUMNS})",
              "history": f"change_log ({LOG_COLUMNS})"}
    with open(path, "w") as out:
        out.write("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\nBEGIN;\n")
        for kind, row in rows:
            out.write(f"INSERT INTO {tables[kind]} VALUES ({','.join(sql_literal(v) for v in row)});\n")
        out.write("COMMIT;\n")


# ---------------------------------------------------------------------------------------------
# The run


class Results:
    def __init__(self):
        self.lines = []

    def add(self, workload, name, backend, value, unit, peer, peer_value, peer_unit=None):
        ratio = value / peer_value if peer_value else float("nan")
        line = (f"{workload} {name} tagd_{backend}={fmt(value)}{unit} "
                f"{peer}={fmt(peer_value)}{peer_unit or unit} ratio={ratio:.2f}")
        self.lines.append((workload, name, backend, value, unit, peer, peer_value, peer_unit or unit, ratio))
        print(line, flush=True)


def fmt(value):
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def sqlite_disk_bytes(path):
    sh(["sqlite3", str(path), "PRAGMA wal_checkpoint(TRUNCATE);"])
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def pg_schema_bytes(schema):
    return int(psql("-c", f"SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                          f"JOIN pg_namespace n ON n.oid = c.relnamespace "
                          f"WHERE n.nspname = '{schema}' AND c.relkind = 'r'").stdout.strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100k users, 8 s loads: under 5 minutes")
    parser.add_argument("--only", default=ALL_WORKLOADS, help="comma-separated workloads")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--users", type=int, help="override the number of users (a trial run)")
    parser.add_argument("--duration", type=int, help="override the seconds of each load")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data, logs)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    users = args.users or (100_000 if args.quick else 1_000_000)
    duration = args.duration or (8 if args.quick else 30)
    redis_requests = 100_000 if args.quick else 400_000
    started = time.monotonic()

    work = Path(tempfile.mkdtemp(prefix="tagd-bench-", dir=os.environ.get("TAGD_BENCH_DIR", "/var/tmp")))
    results = Results()
    redis = Redis(work)
    schemas = ["bench_tagd", "bench_copy", "bench_pgbench"]
    try:
        for schema in schemas:
            psql("-c", f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        log(f"data: {users:,} users x {TAGS_PER_USER} tags in {work}")
        csv_path = work / "assignments.csv"
        write_import_csv(csv_path, users)

        # Peers that do not depend on a backend.
        peer = {}
        if "W1" in only:
            peer["redis_sadd"] = redis_benchmark(redis_requests)
            psql("-c", "CREATE TABLE peer_assign (id BIGSERIAL PRIMARY KEY, user_ref BIGINT NOT NULL, "
                       "group_ref BIGINT NOT NULL, value DOUBLE PRECISION, mtime BIGINT NOT NULL)",
                 schema="bench_pgbench")
            peer["pgbench_insert"] = pgbench(
                "\\set u random(1, 1000000)\n\\set v random(1, 1000000)\n"
                "INSERT INTO peer_assign (user_ref, group_ref, value, mtime) "
                "VALUES (:u, 1, :v, extract(epoch FROM now())::bigint);\n", duration)
            log(f"W1 peers: {peer}")
        if "W2" in only:
            psql("-c", "CREATE TABLE peer_labels (id BIGSERIAL PRIMARY KEY, user_ref BIGINT NOT NULL, "
                       "label_ref BIGINT NOT NULL, mtime BIGINT NOT NULL)", schema="bench_pgbench")
            peer["pgbench_100_rows"] = 100 * pgbench(
                "\\set u random(1, 1000000)\n"
                "INSERT INTO peer_labels (user_ref, label_ref, mtime) "
                "SELECT :u, g, extract(epoch FROM now())::bigint FROM generate_series(1, 100) g;\n",
                duration)
            log(f"W2 peer: {peer['pgbench_100_rows']:.0f} rows/s")
        if {"W4", "W7"} & only:
            redis.cli("flushall")
            before = redis.used_memory()
            commands = work / "redis.resp"
            write_redis_commands(commands, users)
            loading = time.monotonic()
            with open(commands) as stdin:
                sh(["redis-cli", "-p", str(REDIS_PORT), "--pipe"], stdin=stdin)
            peer["redis_load_seconds"] = time.monotonic() - loading
            peer["redis_bytes"] = (redis.used_memory() - before) / (users * TAGS_PER_USER)
            log(f"W7 peer: redis used_memory {peer['redis_bytes']:.1f} B/assignment")
        if "W8" in only:
            peer["redis_sort"] = redis_sort_holders(redis, work, users)
            log(f"W8 peer: redis SORT {peer['redis_sort']:.0f} holders/s")
        if {"W5", "W6"} & only:
            audience_peers(redis, work, users, duration, only, peer)
        if "W9" in only:
            peer["redis_expire"] = expiry.redis_expire(sh, REDIS_PORT, users, work, log)
        if "W4" in only:
            redis.start_webdis()
            env = {**os.environ, "TAGD_BENCH_USERS": str(users), "TAGD_BENCH_USER_BASE": user_id(0)}
            peer["webdis"] = wrk("webdis_smembers.lua", f"http://127.0.0.1:{WEBDIS_PORT}", duration, env)
            log(f"W4 peer: {peer['webdis']}")

        for backend in args.backends.split(","):
            run_backend(backend, work, users, duration, only, peer, results)
    finally:
        redis.close()
        for schema in [] if args.keep else schemas:
            psql("-c", f"DROP SCHEMA IF EXISTS {schema} CASCADE", check=False)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    elapsed = time.monotonic() - started
    log(f"suite finished in {elapsed:.0f} s")
    if not args.no_docs:
        write_docs(results, args, users, duration, redis_requests, elapsed)


def redis_benchmark(requests):
    result = sh(["redis-benchmark", "-p", str(REDIS_PORT), "-c", "50", "-n", str(requests), "-r", "1000000",
                 "--csv", "sadd", "user:__rand_int__", "tag:__rand_int__"])
    row = result.stdout.strip().splitlines()[-1].split(",")
    return float(row[1].strip('"'))


def run_backend(backend, work, users, duration, only, peer, results):
    if backend == "sqlite":
        database_path = work / "tagd.db"
        tagd = Tagd(backend, f"sqlite://{database_path}", work)
    else:
        tagd = Tagd(backend, pg_schema_url("bench_tagd"), work)
    log(f"{backend}: preparing the organization")
    if backend == "postgres" and os.environ.get("TAGD_BENCH_LOG_VERSIONS"):
        # `counter` measures the versions a Citus cluster needs (docs/SCALING.md).
        tagd.cli("log-versions", os.environ["TAGD_BENCH_LOG_VERSIONS"])
    tagd.prepare()

    # W3: the import; then the raw load of the same rows into a copy of the same schema.
    if {"W3", "W4", "W5", "W6", "W7", "W8", "W11", "W12"} & only:
        seconds, out = timed([str(TAGD), "--database", tagd.database, "import", "--corp-id", tagd.corp_id,
                              "--progress-every", "0", str(work / "assignments.csv")])
        summary = json.loads(out.stdout)
        log(f"W3 {backend}: {seconds:.1f} s {summary}")
        if summary["refused"] or summary["applied"] != users * TAGS_PER_USER:
            raise RuntimeError(f"the import did not apply every row: {summary}")
        if "W3" in only:
            peer_seconds = raw_load(backend, work, users)
            name = "psql_copy" if backend == "postgres" else "sqlite3_cli"
            results.add("W3", "import_10_tags_per_user", backend, seconds, "s", name, peer_seconds)
    elif {"W1", "W2", "W10"} & only:
        # Without the import the users do not exist and every assign is refused (404, 40402),
        # every changeLabels too: W1's, W2's and W10's users, one `w1` value each.
        with open(work / "users.csv", "w") as out:
            out.write("user_id,variable_name,value\n")
            out.write("".join(f"{user_id(i)},w1,{i}\n" for i in range(users)))
        sh([str(TAGD), "--database", tagd.database, "import", "--corp-id", tagd.corp_id,
            "--progress-every", "0", str(work / "users.csv")])

    if "W8" in only:
        write_w8_csv(work / "w8.csv", users)
        sh([str(TAGD), "--database", tagd.database, "import", "--corp-id", tagd.corp_id,
            "--progress-every", "0", str(work / "w8.csv")])

    if "W7" in only:
        disk = sqlite_disk_bytes(work / "tagd.db") if backend == "sqlite" else pg_schema_bytes("bench_tagd")
        results.add("W7", "disk_bytes_per_assignment", backend, disk / (users * TAGS_PER_USER), "B",
                    "redis_used_memory", peer["redis_bytes"])

    tagd.start()
    try:
        if {"W4", "W5", "W6", "W7", "W11", "W12"} & only:
            # Reads are served from the index once it holds the organization: wait for it.
            load_seconds = tagd.wait_for_index()
            log(f"{backend}: index loaded in {load_seconds:.1f} s")
            if "W7" in only:
                results.add("W7", "index_load_seconds", backend, load_seconds, "s",
                            "redis_pipe_load", peer["redis_load_seconds"])
        env = tagd.wrk_env(users)
        base = f"http://127.0.0.1:{TAGD_PORT}"
        if "W4" in only:
            w4 = wrk("list_user_tags.lua", base, duration, env)
            results.add("W4", "list_user_tags", backend, w4["rps"], "req/s", "webdis_smembers", peer["webdis"]["rps"])
            results.add("W4", "list_user_tags_p99", backend, w4["p99_ms"], "ms", "webdis_smembers",
                        peer["webdis"]["p99_ms"])
        if "W5" in only:
            counted = audiences.post(TAGD_PORT, env, {"corp_id": tagd.corp_id, "filter": audiences.W5_FILTER,
                                                      "limit": 0})["count"]
            if counted != peer["w5_expected"]:
                raise RuntimeError(f"W5: tagd counted {counted}, expected {peer['w5_expected']}")
            w5 = wrk("segment_count.lua", base, duration, env)
            results.add("W5", "count_a_and_not_b", backend, w5["rps"], "req/s",
                        "redis_scard_sintercard", peer["redis_w5"]["rps"])
            results.add("W5", "count_a_and_not_b", backend, w5["rps"], "req/s", "pgbench_count",
                        peer["pg_w5"], "tps")
            results.add("W5", "count_a_and_not_b_p99", backend, w5["p99_ms"], "ms",
                        "redis_scard_sintercard", peer["redis_w5"]["p99_ms"])
        if "W6" in only:
            walked = audiences.post(TAGD_PORT, env, {"corp_id": tagd.corp_id, "filter": audiences.W6_FILTER,
                                                     "limit": 0})["count"]
            if walked != peer["w6_expected"]:
                raise RuntimeError(f"W6: tagd counted {walked}, expected {peer['w6_expected']}")
            rate, page_p99 = audiences.tagd_w6_walk(wrk, base, env, duration, peer["w6_expected"])
            results.add("W6", "walk_five_leaf_audience", backend, rate, "members/s", "pg_keyset_walk",
                        peer["pg_w6"], "members/s")
            results.add("W6", "walk_page_p99", backend, page_p99, "ms", "pg_keyset_page_mean",
                        peer["pg_w6_page_ms"])
        if "W7" in only:
            rss = tagd.rss_bytes()
            results.add("W7", "rss_bytes_per_assignment", backend, rss / (users * TAGS_PER_USER), "B",
                        "redis_used_memory", peer["redis_bytes"])
            index_bytes = tagd.metric("tagd_index_bytes")
            results.add("W7", "index_bytes_per_assignment", backend, index_bytes / (users * TAGS_PER_USER),
                        "B", "redis_used_memory", peer["redis_bytes"])
        if "W1" in only:
            w1 = wrk("assign.lua", base, duration, env)
            results.add("W1", "assign", backend, w1["rps"], "req/s", "redis_sadd", peer["redis_sadd"])
            results.add("W1", "assign", backend, w1["rps"], "req/s", "pgbench_insert", peer["pgbench_insert"], "tps")
        if "W8" in only:
            w8 = search_stream(users)
            results.add("W8", "label_search_stream_all", backend, w8["all"], "holders/s",
                        "redis_sort", peer["redis_sort"])
            results.add("W8", "label_search_stream_half", backend, w8["half"], "holders/s",
                        "redis_sort", peer["redis_sort"])
            results.add("W8", "healthz_p99_during_search", backend, w8["healthz_p99_ms"], "ms",
                        "healthz_p99_idle", w8["healthz_idle_p99_ms"])
        if "W9" in only:
            w9 = expiry.tagd_sweep(tagd, backend, work, users, duration, env, base, wrk, sh, psql, TAGD,
                                   user_id, log)
            results.add("W9", "expiry_all_recorded_after", backend, w9["sweep_seconds"], "s",
                        "redis_active_expire", peer["redis_expire"])
            results.add("W9", "assign_during_sweep", backend, w9["assign_during_rps"], "req/s",
                        "tagd_assign_idle", w9["assign_idle_rps"])
        if "W2" in only:
            w2 = wrk("change_labels_100.lua", base, duration, env)
            results.add("W2", "change_labels_100", backend, w2["rps"] * W2_LABELS, "labels/s",
                        "pgbench_100_rows", peer["pgbench_100_rows"], "rows/s")
        if "W12" in only:
            # The console's pages over the whole organization (bench/console.py).
            w12 = console.run(TAGD_PORT, BENCH_ADMIN_TOKEN, tagd.corp_id, user_id(users // 2))
            for page, ms in w12.items():
                results.add("W12", f"console_{page}_p99", backend, ms, "ms", "target", console.TARGET_MS)
        if "W11" in only and backend == "postgres":
            # Several servers share a PostgreSQL, not a SQLite file (bench/servers.py).
            w11 = servers.run(tagd, TAGD_PORT, duration, env, wrk, TAGD, BENCH_ADMIN_TOKEN, work, log)
            for name in ("list_user_tags", "assign"):
                one, three = w11[name]["one"], w11[name]["three"]
                results.add("W11", f"{name}_3_servers", backend, three["rps"], "req/s",
                            f"tagd_{backend}_1_server", one["rps"])
                results.add("W11", f"{name}_3_servers_p99", backend, three["p99_ms"], "ms",
                            f"tagd_{backend}_1_server", one["p99_ms"])
    finally:
        tagd.stop()

    if "W10" in only:
        # W10 (the events issue's W8): W1 without events, then with a webhook endpoint and
        # NATS, on servers of its own (bench/events.py).
        w10 = events.run(tagd, backend, work, duration, tagd.wrk_env(users), f"http://127.0.0.1:{TAGD_PORT}",
                         wrk, sh, psql, TAGD, log)
        results.add("W10", "assign_with_events", backend, w10["with_rps"], "req/s",
                    f"tagd_{backend}_no_events", w10["without_rps"])
        for sink in ("webhook", "nats"):
            results.add("W10", f"events_{sink}", backend, w10[sink]["rate"], "events/s",
                        "writes", w10["with_rps"], "req/s")
        for sink in ("webhook", "nats"):
            results.add("W10", f"events_{sink}_lag_p50", backend, w10[sink]["lag_p50_ms"], "ms",
                        "assign_p50", w10["writes_p50_ms"])
            results.add("W10", f"events_{sink}_lag_p99", backend, w10[sink]["lag_p99_ms"], "ms",
                        "target", events.LAG_TARGET_MS)


def audience_peers(redis, work, users, duration, only, peer):
    """W5 and W6's peers, and the true answers every side is checked against."""
    w5, w6 = audiences.expected_counts(users, value_of)
    peer["w5_expected"], peer["w6_expected"] = w5, w6
    audiences.load_pg_peer(psql, work, users, value_of, user_id)
    if audiences.pg_counts(psql) != (w5, w6):
        raise RuntimeError(f"PostgreSQL counts {audiences.pg_counts(psql)}, expected {(w5, w6)}")
    if "W5" in only:
        audiences.load_redis_tag_sets(redis, work, users, value_of, user_id, sh, REDIS_PORT)
        counted, rps, p99_ms = audiences.redis_count(sh, REDIS_PORT, 200)
        if counted != w5:
            raise RuntimeError(f"Redis counts {counted}, expected {w5}")
        peer["redis_w5"] = {"rps": rps, "p99_ms": p99_ms}
        peer["pg_w5"] = pgbench("SELECT count(*) FROM peer_users WHERE t0 AND NOT t1;\n", duration,
                                clients=64)
        log(f"W5 peers: redis {rps:.1f}/s p99 {p99_ms} ms, pgbench {peer['pg_w5']:.1f} tps")
    if "W6" in only:
        walks = pgbench(f"SELECT w6_walk({audiences.W6_PAGE});\n", duration, clients=1)
        pages = w6 // audiences.W6_PAGE + 1
        peer["pg_w6"] = walks * w6
        peer["pg_w6_page_ms"] = 1000 / (walks * pages)
        log(f"W6 peer: {walks:.2f} walks/s of {w6:,} members")


def healthz_latencies(stop, out):
    """/healthz one request after another until `stop` is set, each latency in ms into `out`."""
    while not stop.is_set():
        started = time.perf_counter()
        urllib.request.urlopen(f"http://127.0.0.1:{TAGD_PORT}/healthz").read()
        out.append((time.perf_counter() - started) * 1000)
        time.sleep(0.005)


def p99(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def search_stream(users):
    """W8: `limit=-1` label searches by prefix (every user, then every other user), streamed
    to the end, holders per second; and /healthz p99 while they run against idle."""
    idle = []
    stop = threading.Event()
    stop.set()
    for _ in range(200):
        started = time.perf_counter()
        urllib.request.urlopen(f"http://127.0.0.1:{TAGD_PORT}/healthz").read()
        idle.append((time.perf_counter() - started) * 1000)
    during = []
    stop = threading.Event()
    prober = threading.Thread(target=healthz_latencies, args=(stop, during))
    prober.start()
    rates = {}
    try:
        for key, prefix, expected in (("all", "prem", users), ("half", "sil", (users + 1) // 2)):
            request = urllib.request.Request(
                f"http://127.0.0.1:{TAGD_PORT}/v2/customers/labels/search?q={prefix}&limit=-1",
                headers={"authorization": "Basic YmVuY2g6YmVuY2gtcGFzc3dvcmQ="})
            started = time.perf_counter()
            body = json.loads(urllib.request.urlopen(request, timeout=600).read())
            seconds = time.perf_counter() - started
            if len(body["data"]) != expected:
                raise RuntimeError(f"W8 {prefix}: {len(body['data'])} holders, expected {expected}")
            rates[key] = expected / seconds
            log(f"W8 q={prefix}: {expected:,} holders in {seconds:.2f} s")
    finally:
        stop.set()
        prober.join()
    return {**rates, "healthz_p99_ms": p99(during), "healthz_idle_p99_ms": p99(idle)}


def redis_sort_holders(redis, work, users):
    """The peer of W8: the holders of a label as a Redis set, read back sorted by number."""
    redis.cli("del", "label:premium")
    commands = work / "w8.resp"
    with open(commands, "w") as out:
        for start in range(0, users, 1000):
            ids = [user_id(i) for i in range(start, min(users, start + 1000))]
            parts = ["SADD", "label:premium", *ids]
            out.write(f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts))
    with open(commands) as stdin:
        sh(["redis-cli", "-p", str(REDIS_PORT), "--pipe"], stdin=stdin)
    seconds, _ = timed(["redis-cli", "-p", str(REDIS_PORT), "SORT", "label:premium"])
    return users / seconds


def raw_load(backend, work, users):
    """The same rows as tagd's import, loaded raw into a copy of the same schema."""
    if backend == "postgres":
        peer = Tagd("postgres-copy", pg_schema_url("bench_copy"), work)
        peer.prepare()
        org = int(psql("-c", "SELECT id FROM organizations", schema="bench_copy").stdout.strip())
        refs = dict(line.split("|") for line in psql(
            "-c", "SELECT variable_name, id FROM tag_groups", schema="bench_copy").stdout.split())
        write_copy_files(work, raw_rows(users, org, {k: int(v) for k, v in refs.items()}))
        script = work / "copy.sql"
        script.write_text(
            f"\\copy users (id, org_id, user_id, ctime) FROM '{work}/copy_user.csv' WITH (FORMAT csv)\n"
            f"\\copy tag_assignments (id, {ASSIGNMENT_COLUMNS}) FROM '{work}/copy_assignment.csv' WITH (FORMAT csv)\n"
            f"\\copy change_log ({LOG_COLUMNS}) FROM '{work}/copy_history.csv' WITH (FORMAT csv)\n")
        seconds, _ = timed(["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-q", "-1", "-f", str(script)],
                           env={**os.environ, "PGOPTIONS": "-c search_path=bench_copy"})
        log(f"W3 psql \\copy: {seconds:.1f} s")
        return seconds
    source = work / "tagd-copy.db"
    peer = Tagd("sqlite-copy", f"sqlite://{source}", work)
    peer.prepare()
    org = int(sh(["sqlite3", str(source), "SELECT id FROM organizations"]).stdout.strip())
    refs = dict(line.split("|") for line in sh(
        ["sqlite3", str(source), "SELECT variable_name, id FROM tag_groups"]).stdout.split())
    inserts = work / "inserts.sql"
    write_sqlite_inserts(inserts, raw_rows(users, org, {k: int(v) for k, v in refs.items()}))
    with open(inserts) as stdin:
        seconds, _ = timed(["sqlite3", str(source)], stdin=stdin)
    log(f"W3 sqlite3 CLI: {seconds:.1f} s")
    return seconds


# ---------------------------------------------------------------------------------------------
# docs/BENCHMARKS.md: the generated part sits between two markers; the rest is hand-written.

BEGIN, END = "<!-- bench/run.sh: begin -->", "<!-- bench/run.sh: end -->"


def version(args):
    try:
        return sh(args, check=False).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "not found"


def write_docs(results, args, users, duration, redis_requests, elapsed):
    command = "bench/run.sh" + (" --quick" if args.quick else "") + \
        (f" --only {args.only}" if args.only != ALL_WORKLOADS else "")
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    memory = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024 // 1024
    rows = ["| Workload | Measure | tagd backend | tagd | Peer | Peer value | Ratio |",
            "|---|---|---|---|---|---|---|"]
    for workload, name, backend, value, unit, peer, peer_value, peer_unit, ratio in results.lines:
        rows.append(f"| {workload} | {name} | {backend} | {fmt(value)} {unit} | {peer} | "
                    f"{fmt(peer_value)} {peer_unit} | {ratio:.2f} |")
    commit = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    block = "\n".join([
        BEGIN,
        f"## Suite results ({time.strftime('%Y-%m-%d')}, `{command}`, {elapsed:.0f} s)",
        "",
        f"Data: {users:,} users x {TAGS_PER_USER} tags ({users * TAGS_PER_USER:,} assignments) from a "
        f"fixed seed; load phases {duration} s each with wrk (2 threads, 64 connections); redis-benchmark "
        f"{redis_requests:,} requests with 50 clients; pgbench 8 clients. Ratio = tagd / peer.",
        "",
        *rows,
        "",
        f"- Machine: {os.cpu_count()} cores ({cpu}), {memory} GiB, {platform.system()} {platform.release()}, "
        "ext4 on a virtual disk; every process on the same machine, one workload at a time.",
        f"- tagd {commit} (release build, `{version([str(TAGD), '--version'])}`); "
        f"{version(['redis-server', '--version'])}; webdis {webdis_version()}; "
        f"PostgreSQL {pg_setting('server_version')} (fsync {pg_setting('fsync')}, synchronous_commit "
        f"{pg_setting('synchronous_commit')}, shared_buffers {pg_setting('shared_buffers')}); "
        f"{version(['pgbench', '--version'])}; "
        f"SQLite CLI {version(['sqlite3', '--version']).split()[0]}; {version(['wrk', '-v'])}"
        + (f"; {version(['nats-server', '--version'])} (JetStream, file storage); Node "
           f"{version(['node', '--version'])}" if "W10" in args.only.split(",") else "") + ".",
        END,
    ])
    path = ROOT / "docs" / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    log(f"wrote {path}")


def pg_setting(name):
    return psql("-c", f"SHOW {name}").stdout.strip()


def webdis_version():
    out = sh(["dpkg-query", "-W", "-f", "${Version}", "webdis"], check=False).stdout.strip()
    return out or "unknown"


if __name__ == "__main__":
    main()
