#!/usr/bin/env bash
# API fuzzing with schemathesis against a live tagd with two organizations (issue 5).
#   fuzz/schemathesis.sh [DATABASE_URL]      default: a fresh SQLite file
# Installs schemathesis into target/schemathesis-venv, starts tagd (debug build), creates
# organizations A and B, fuzzes every operation as A (--checks all, stateful phase included,
# fixed seed) and fails on any server error, schema violation or sight of B's data.
set -euo pipefail
cd "$(dirname "$0")/.."
database="${1:-sqlite://$(mktemp -d)/fuzz.db}"
shift || true
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi
cargo build -q -p tagd
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TAGD_FUZZ_ADMIN_TOKEN="fuzz-admin-$RANDOM$RANDOM"
TAGD_ADMIN_TOKEN="$TAGD_FUZZ_ADMIN_TOKEN" TAGD_LOG=warn target/debug/tagd serve \
  --listen "127.0.0.1:$port" --database "$database" \
  --auth-failures-per-minute 1000000 --rate-limit-per-sec 100000 --rate-limit-burst 100000 \
  > target/fuzz-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
eval "$(python3 fuzz/setup.py "http://127.0.0.1:$port" "$TAGD_FUZZ_ADMIN_TOKEN")"
SCHEMATHESIS_HOOKS=hooks PYTHONPATH=fuzz "$venv/bin/schemathesis" \
  --config-file fuzz/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
  --checks all --phases examples,coverage,fuzzing,stateful "$@"
