"""W9 (issue 14): N assignments expiring at the same second. How long until the sweep has
recorded every expiry (the `tag.expired` entries of the log), and what it does to single
assigns (W1's load) while it runs; the peer is Redis deleting N keys that expire at the same
second (`SET ... EXAT`, its active expiry), counted down with DBSIZE.

The assignments are imported (`tagd import`) into a group whose default expiry is a fixed
date a little ahead, so every one of them expires at that same second. Reads leave them out
from that second on; the sweep only records them."""

import datetime
import json
import sqlite3
import threading
import time

# Redis database the peer's keys live in (the other workloads use database 0).
REDIS_DB = "9"


def utc(secs):
    return datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def wait_until(secs):
    while time.time() < secs:
        time.sleep(min(0.05, max(0.0, secs - time.time())))


def redis_expire(sh, port, users, work, log):
    """Seconds from the expiry second until Redis holds none of `users` keys that expire then."""
    at = int(time.time()) + 15 + users // 100_000
    commands = work / "w9.resp"
    with open(commands, "w") as out:
        for i in range(users):
            key, stamp = f"w9:{i}", str(at)
            parts = ["SET", key, "1", "EXAT", stamp]
            out.write(f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts))
    with open(commands) as stdin:
        sh(["redis-cli", "-p", str(port), "-n", REDIS_DB, "--pipe"], stdin=stdin)
    loaded = int(sh(["redis-cli", "-p", str(port), "-n", REDIS_DB, "DBSIZE"]).stdout)
    if loaded != users or time.time() >= at:
        raise RuntimeError(f"W9 peer: {loaded} keys loaded by {utc(time.time())}, expiry {utc(at)}")
    wait_until(at)
    while int(sh(["redis-cli", "-p", str(port), "-n", REDIS_DB, "DBSIZE"]).stdout):
        time.sleep(0.05)
    seconds = time.time() - at
    log(f"W9 peer: redis deleted {users:,} keys in {seconds:.2f} s after they expired")
    return seconds


def recorded_counter(tagd, psql, backend, work):
    """A function that counts the `tag.expired` entries of the log."""
    if backend == "sqlite":
        path = str(work / "tagd.db")

        def count():
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                return db.execute("SELECT COUNT(*) FROM change_log WHERE kind = 'tag.expired'").fetchone()[0]
        return count
    return lambda: int(psql("-c", "SELECT COUNT(*) FROM change_log WHERE kind = 'tag.expired'",
                            schema="bench_tagd").stdout.strip())


def tagd_sweep(tagd, backend, work, users, duration, env, base, wrk, sh, psql, tagd_binary, user_id, log):
    """{sweep_seconds, assign_idle_rps, assign_during_rps} for `users` assignments expiring
    at one second."""
    lead = 30 + users * 200 // 1_000_000
    at = int(time.time()) + lead
    v5 = {"authorization": f"Bearer {tagd.token}", "x-app-id": tagd.app_id}
    created = tagd.call("POST", "/api/v5/entity/tags/group/create", {
        "name": "w9", "variable_name": "w9", "description": "", "attribute": "define",
        "category": "bench", "corp_id": tagd.corp_id,
        "expiry": {"policy": "fixed_date", "date": utc(at)}}, v5)
    if created["code"] != 0:
        raise RuntimeError(f"W9: {created}")
    rows = work / "w9.csv"
    with open(rows, "w") as out:
        out.write("user_id,variable_name,value\n")
        out.write("".join(f"{user_id(i)},w9,True\n" for i in range(users)))
    out = sh([str(tagd_binary), "--database", tagd.database, "import", "--corp-id", tagd.corp_id,
              "--progress-every", "0", str(rows)])
    summary = json.loads(out.stdout)
    if summary["applied"] != users or time.time() >= at - duration - 2:
        raise RuntimeError(f"W9: the import ({summary}) ended too close to the expiry {utc(at)}")
    count = recorded_counter(tagd, psql, backend, work)
    before = count()
    # W1's load with nothing to sweep, then the same load from the expiry second on.
    idle = wrk("assign.lua", base, duration, env)
    wait_until(at)
    during = {}
    load = threading.Thread(target=lambda: during.update(wrk("assign.lua", base, duration, env)))
    load.start()
    while count() - before < users:
        if time.time() - at > 900:
            raise RuntimeError(f"W9: {count() - before} of {users} recorded after 900 s")
        time.sleep(0.1)
    seconds = time.time() - at
    load.join()
    log(f"W9 {backend}: {users:,} expiries recorded in {seconds:.2f} s; assign {idle['rps']:.0f} req/s idle, "
        f"{during['rps']:.0f} req/s from the expiry second on")
    return {"sweep_seconds": seconds, "assign_idle_rps": idle["rps"], "assign_during_rps": during["rps"]}
