#!/usr/bin/env bash
# A long soak (issue 19): W4's mix for 30 minutes, RSS, open files and p99 every minute.
#   bench/soak.sh [--minutes 30] [--backend sqlite|postgres] [--users 100000]
#   TAGD_BENCH_BINARY=/path/to/tagd bench/soak.sh ...   that build instead (no cargo build)
# Not part of CI. Exits 1 when the resident set was still rising at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}
if [ -z "${TAGD_BENCH_BINARY:-}" ]; then
  cargo build --release -q -p tagd
fi
exec python3 bench/soak.py "$@"
