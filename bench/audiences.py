"""W5 and W6 (issue 13): audiences over the suite's data, against Redis and PostgreSQL.

W5  the count of "t0 and not t1" (two define tags, each true for two users in three), 64
    connections: tagd over HTTP (`segments/query`, limit 0) against Redis computing the same
    count server-side (SCARD - SINTERCARD in one EVAL, through redis-benchmark) and against
    PostgreSQL counting over a table with one row per user and one column per tag (a parallel
    sequential scan: at two users in three, no index helps), through pgbench.
W6  a five-leaf audience (two define tags, a number range, a string prefix, a `not`) paged
    through to the end, one client: members per second and the p99 of a page, against the
    same walk in PostgreSQL (keyset pages in a PL/pgSQL function, so no client round trips).
"""

import csv
import json
import urllib.request

W5_FILTER = {"all": [{"tag": "t0"}, {"not": {"tag": "t1"}}]}
W6_FILTER = {"all": [
    {"tag": "t0"}, {"tag": "t2"},
    {"tag": "t4", "op": "between", "value": [10000, 80000]},
    {"tag": "t7", "op": "prefix", "value": "P"},
    {"not": {"tag": "t1"}},
]}
W6_SQL = "t0 AND t2 AND t4 BETWEEN 10000 AND 80000 AND t7 LIKE 'P%' AND NOT t1"
W6_PAGE = 1000


def expected_counts(users, value_of):
    """The true answers, from the data's formula: every run checks tagd and the peers."""
    true = lambda i, t: value_of(i, t) == "True"
    w5 = sum(1 for i in range(users) if true(i, 0) and not true(i, 1))
    w6 = sum(1 for i in range(users) if true(i, 0) and true(i, 2) and not true(i, 1)
             and 10000 <= float(value_of(i, 4)) <= 80000 and value_of(i, 7).startswith("P"))
    return w5, w6


def load_redis_tag_sets(redis, work, users, value_of, user_id, sh, port):
    """tag:t0 and tag:t1: the users whose define tag is true."""
    commands = work / "w5.resp"
    with open(commands, "w") as out:
        for tag in (0, 1):
            members = [user_id(i) for i in range(users) if value_of(i, tag) == "True"]
            for start in range(0, len(members), 1000):
                parts = ["SADD", f"tag:t{tag}", *members[start:start + 1000]]
                out.write(f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts))
    with open(commands) as stdin:
        sh(["redis-cli", "-p", str(port), "--pipe"], stdin=stdin)


def redis_count(sh, port, requests):
    script = "return redis.call('SCARD', KEYS[1]) - redis.call('SINTERCARD', 2, KEYS[1], KEYS[2])"
    count = int(sh(["redis-cli", "-p", str(port), "EVAL", script, "2", "tag:t0", "tag:t1"]).stdout)
    result = sh(["redis-benchmark", "-p", str(port), "-c", "64", "-n", str(requests), "--csv",
                 "EVAL", script, "2", "tag:t0", "tag:t1"])
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",...
    row = next(csv.reader([result.stdout.strip().splitlines()[-1]]))
    return count, float(row[1]), float(row[6])


def load_pg_peer(psql, work, users, value_of, user_id):
    """One row per user, one column per tag, in the pgbench schema."""
    path = work / "w5_users.csv"
    with open(path, "w") as out:
        for i in range(users):
            cells = [user_id(i)] + [
                ("t" if value_of(i, t) == "True" else "f") if t < 4 else value_of(i, t)
                for t in range(10)]
            out.write(",".join(cells) + "\n")
    psql("-c", "CREATE TABLE peer_users (uid BIGINT PRIMARY KEY, t0 BOOLEAN, t1 BOOLEAN, "
               "t2 BOOLEAN, t3 BOOLEAN, t4 DOUBLE PRECISION, t5 DOUBLE PRECISION, "
               "t6 DOUBLE PRECISION, t7 TEXT, t8 TEXT, t9 TEXT)", schema="bench_pgbench")
    psql("-c", f"\\copy peer_users FROM '{path}' WITH (FORMAT csv)", schema="bench_pgbench")
    psql("-c", "CREATE INDEX ON peer_users (t4); CREATE INDEX ON peer_users (t7 text_pattern_ops); "
               "ANALYZE peer_users", schema="bench_pgbench")
    psql("-c", f"""CREATE FUNCTION w6_walk(page INT) RETURNS BIGINT LANGUAGE plpgsql AS $$
        DECLARE last BIGINT := 0; got BIGINT; total BIGINT := 0;
        BEGIN
          LOOP
            SELECT count(*), max(uid) INTO got, last FROM (
              SELECT uid FROM peer_users WHERE uid > last AND {W6_SQL}
              ORDER BY uid LIMIT page) p;
            total := total + got;
            EXIT WHEN got < page;
          END LOOP;
          RETURN total;
        END $$""", schema="bench_pgbench")


def pg_counts(psql):
    w5 = int(psql("-c", "SELECT count(*) FROM peer_users WHERE t0 AND NOT t1",
                  schema="bench_pgbench").stdout)
    w6 = int(psql("-c", f"SELECT w6_walk({W6_PAGE})", schema="bench_pgbench").stdout)
    return w5, w6


def post(port, env, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v5/segments/query", json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {env['TAGD_BENCH_TOKEN']}",
                 "x-app-id": env["TAGD_BENCH_APP_ID"]})
    answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
    if answer["code"] != 0:
        raise RuntimeError(f"segments/query refused: {answer}")
    return answer["data"]


def tagd_w6_walk(wrk, base, env, duration, expected):
    """Walks W6's audience page by page with one wrk connection for `duration` seconds: members
    per second, and the p99 of a page."""
    # A walk is this many pages: the last is the first with no page after it.
    pages_per_walk = max(1, -(-expected // W6_PAGE))
    env = {**env, "TAGD_BENCH_FILTER": json.dumps(W6_FILTER), "TAGD_BENCH_PAGE": str(W6_PAGE)}
    result = wrk("segment_walk.lua", base, duration, env, connections=1, threads=1)
    return result["rps"] * expected / pages_per_walk, result["p99_ms"]
