#!/usr/bin/env bash
# The fault matrix of issue 19 (docs/RELIABILITY.md, "Fault matrix"): a steady v5 write load
# against tagd while PostgreSQL restarts or is killed, its connections are cut, SQLite's disk
# fills up, tagd is killed, NATS is down or a webhook receiver fails; one FAULT line per fault.
#
#   bash bench/faults.sh --quick                       # CI: every fault, short phases
#   bash bench/faults.sh                               # full: 20 s of load around each fault, NATS down 60 s
#   bash bench/faults.sh --quick --binary target/debug/tagd --backends sqlite --only tagd_kill9
#
# Runs as root: it mounts a tmpfs, restarts PostgreSQL (pg_ctlcluster) and stops and starts the
# local nats-server. bench/faults.py restores all of it itself; this trap does it once more in
# case Python itself dies (PostgreSQL and NATS must be up for what CI runs next).
set -uo pipefail
cd "$(dirname "$0")/.."

state="$(mktemp -d /tmp/tagd-faults-state.XXXXXX)"

restore() {
  # tagd processes the script started and did not stop.
  if [[ -f "$state/tagd.pids" ]]; then
    while read -r pid; do
      if [[ -n "$pid" ]] && grep -q tagd "/proc/$pid/cmdline" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    done <"$state/tagd.pids"
  fi
  # The tmpfs of the disk-full fault.
  if [[ -f "$state/mounts" ]]; then
    while read -r mount; do
      if [[ -n "$mount" ]] && mountpoint -q "$mount"; then umount "$mount" 2>/dev/null || umount -l "$mount" || true; fi
    done <"$state/mounts"
  fi
  # PostgreSQL.
  if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    echo "faults.sh: PostgreSQL is down: starting cluster $version/main" >&2
    for _ in $(seq 1 30); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null && break
      pg_isready -q -h 127.0.0.1 -p 5432 && break
      sleep 1
    done
  fi
  # NATS, with the command line the Python side saved when it stopped it.
  if [[ -f "$state/nats.argv" ]] && ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    mapfile -d '' argv <"$state/nats.argv"
    out="$(cat "$state/nats.out" 2>/dev/null || echo /dev/null)"
    echo "faults.sh: NATS is down: starting ${argv[*]}" >&2
    (cd "$(cat "$state/nats.cwd")" && setsid "${argv[@]}" </dev/null >>"$out" 2>&1 &)
    for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.2; done
  fi
  # PostgreSQL schemas and the work directory (databases, logs) of a run that did not clean up.
  if [[ -f "$state/schemas" ]] && pg_isready -q -h 127.0.0.1 -p 5432; then
    while read -r schema; do
      [[ -n "$schema" ]] && PGOPTIONS="-c client_min_messages=warning" \
        psql "${TAGD_FAULTS_POSTGRES_URL:-${TAGD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}" \
        -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
    done <"$state/schemas"
  fi
  if [[ -f "$state/work" ]]; then rm -rf "$(cat "$state/work")"; fi
  rm -rf "$state"
}
trap restore EXIT
trap 'exit 130' INT TERM

if ! command -v python3 >/dev/null 2>&1; then
  echo "faults.sh: python3 is missing" >&2
  exit 2
fi
python3 bench/faults.py --state-dir "$state" "$@"
