#!/usr/bin/env bash
# The benchmark suite (issue 6): tagd on SQLite and on PostgreSQL against Redis, webdis,
# pgbench, psql \copy and the sqlite3 CLI, one after another, in one run.
#   bench/run.sh            full run (1M users x 10 tags, 30 s per load)
#   bench/run.sh --quick    under 5 minutes (100k users x 10 tags, 8 s per load)
#   bench/run.sh --only W1,W4 [--quick]
#   TAGD_BENCH_BINARY=/path/to/tagd bench/run.sh ...   that build instead (no cargo build)
# Prints one line per workload, backend and peer:
#   W<n> <name> tagd_<backend>=<value><unit> <peer>=<value><unit> ratio=<x.xx>
# and rewrites the generated part of docs/BENCHMARKS.md. Needs root for apt-get when a peer is
# missing; PostgreSQL is the local cluster (started if it is down), NATS with JetStream the one on
# 127.0.0.1:4222 (started if it is down; W10), Node runs W10's receivers (bench/events_sink.js).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in redis-server:redis-server redis-benchmark:redis-tools webdis:webdis wrk:wrk \
  pgbench:postgresql-client psql:postgresql-client sqlite3:sqlite3 nats-server:nats-server \
  node:nodejs npm:npm; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi

# W10: the NATS client of bench/events_sink.js, and NATS with JetStream.
if [ ! -d bench/node_modules/@nats-io/jetstream ]; then
  (cd bench && npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    echo "npm ci failed in bench/: W10 cannot run" >&2
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  mkdir -p /var/tmp/tagd-bench-nats
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /var/tmp/tagd-bench-nats \
    >/var/tmp/tagd-bench-nats.log 2>&1 &
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.2; done
fi

if [ -z "${TAGD_BENCH_BINARY:-}" ]; then
  cargo build --release -q -p tagd
fi
exec python3 bench/suite.py "$@"
