#!/usr/bin/env bash
# API fuzzing with schemathesis against a live tagd with two organizations (issue 5).
#   fuzz/schemathesis.sh [DATABASE_URL]      default: a fresh SQLite file
# Installs schemathesis into target/schemathesis-venv, starts tagd (debug build), creates
# organizations A and B, fuzzes every operation as A (--checks all, stateful phase included,
# fixed seed) and fails on any server error, schema violation or sight of B's data. Before
# that, openapi-spec-validator checks /openapi.json.
set -euo pipefail
cd "$(dirname "$0")/.."
database="${1:-sqlite://$(mktemp -d)/fuzz.db}"
shift || true
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi
# Its own environment: its jsonschema pins need not agree with schemathesis's.
validator=target/openapi-validator-venv
if [ ! -x "$validator/bin/openapi-spec-validator" ]; then
  python3 -m venv "$validator"
  "$validator/bin/pip" install -q "openapi-spec-validator==0.7.2"
fi
cargo build -q -p tagd
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TAGD_FUZZ_ADMIN_TOKEN="fuzz-admin-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n")"
TAGD_ADMIN_TOKEN="$TAGD_FUZZ_ADMIN_TOKEN" TAGD_LOG=warn target/debug/tagd serve \
  --listen "127.0.0.1:$port" --database "$database" \
  --auth-failures-per-minute 1000000 --rate-limit-per-sec 100000 --rate-limit-burst 100000 \
  > target/fuzz-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
# The document itself must be valid OpenAPI 3.1 (unique operationIds included), as client
# generators read it.
curl -sf "127.0.0.1:$port/openapi.json" > target/openapi.json
"$validator/bin/openapi-spec-validator" target/openapi.json
eval "$(python3 fuzz/setup.py "http://127.0.0.1:$port" "$TAGD_FUZZ_ADMIN_TOKEN")"
SCHEMATHESIS_HOOKS=hooks PYTHONPATH=fuzz "$venv/bin/schemathesis" \
  --config-file fuzz/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
  --checks all --phases examples,coverage,fuzzing,stateful "$@"
