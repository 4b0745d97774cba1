#!/usr/bin/env python3
"""A long soak (issue 19): W4's mix (list one user's tags, one request in ten an assign) with
32 connections for N minutes against a release build, sampled every minute.

    bench/soak.sh [--minutes 30] [--backend sqlite|postgres] [--users 100000]

Every minute prints one line:
    SOAK minute=<m> rps=<req/s> p99_ms=<ms> rss_mb=<MB> open_files=<n> index_mb=<MB> errors=<n>
and at the end a verdict on memory: flat when the resident set of the last 10 minutes (or the
last third of a shorter run) stays within 10 % of its own minimum. Standard library only; it
reuses bench/suite.py's server control and data (the same fixed seed as the suite).
Not part of CI: it runs for half an hour.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402  (bench/ is not a package)


def open_files(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def index_bytes():
    text = urllib.request.urlopen(f"http://127.0.0.1:{suite.TAGD_PORT}/metrics").read().decode()
    found = re.search(r"^tagd_index_bytes (\d+)", text, re.M)
    return int(found.group(1)) if found else 0


def verdict(rss):
    """Whether the resident set levelled off: the tail (last 10 samples, or the last third)
    within 10 % of its minimum."""
    tail = rss[-10:] if len(rss) >= 20 else rss[-max(1, len(rss) // 3):]
    spread = (max(tail) - min(tail)) / min(tail)
    return spread, spread <= 0.10


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tagd-soak-", dir=os.environ.get("TAGD_BENCH_DIR", "/var/tmp")))
    schema = "bench_soak"
    if args.backend == "sqlite":
        tagd = suite.Tagd("sqlite", f"sqlite://{work / 'tagd.db'}", work)
    else:
        suite.psql("-c", f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        tagd = suite.Tagd("postgres", suite.pg_schema_url(schema), work)
    try:
        suite.log(f"soak: {args.users:,} users x {suite.TAGS_PER_USER} tags on {args.backend}, "
                  f"{args.minutes} min, {args.connections} connections, {suite.TAGD}")
        tagd.prepare()
        suite.write_import_csv(work / "assignments.csv", args.users)
        suite.sh([str(suite.TAGD), "--database", tagd.database, "import", "--corp-id", tagd.corp_id,
                  "--progress-every", "0", str(work / "assignments.csv")])
        tagd.start()
        started_rss = tagd.rss_bytes()
        tagd.wait_for_index()
        env = tagd.wrk_env(args.users)
        url = f"http://127.0.0.1:{suite.TAGD_PORT}"
        rss, lines = [], []
        print(f"SOAK minute=0 rss_mb={started_rss / 1e6:.1f} (started) "
              f"rss_mb={tagd.rss_bytes() / 1e6:.1f} (index loaded) open_files={open_files(tagd.server.pid)}",
              flush=True)
        for minute in range(1, args.minutes + 1):
            result = suite.wrk("list_user_tags.lua", url, 60, env, connections=args.connections)
            rss.append(tagd.rss_bytes())
            line = (f"SOAK minute={minute} rps={result['rps']:.0f} p99_ms={result['p99_ms']:.2f} "
                    f"rss_mb={rss[-1] / 1e6:.1f} open_files={open_files(tagd.server.pid)} "
                    f"index_mb={index_bytes() / 1e6:.1f} "
                    f"errors={int(result['errors'] + result['non2xx'])}")
            lines.append(line)
            print(line, flush=True)
        spread, flat = verdict(rss)
        print(f"SOAK verdict rss_tail_spread={spread * 100:.1f}% {'flat' if flat else 'RISING'}", flush=True)
        return 0 if flat else 1
    finally:
        tagd.stop()
        if args.backend == "postgres":
            suite.psql("-c", f"DROP SCHEMA IF EXISTS {schema} CASCADE", check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
