#!/usr/bin/env bash
# v2 changeLabels throughput with and without the Basic verification cache (issue 4).
#   bench/v2_basic_auth.sh [DURATION] [DATABASE_URL]
# Builds the release binary, serves a fresh database, loads 10,000 customers and 10 labels,
# then runs wrk (64 connections, 2 threads) twice: cache on (30 s) and cache off (0).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-60s}"
database="${2:-sqlite://$(mktemp -d)/bench.db}"
port=18080
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p tagd >/dev/null 2>&1
tagd=target/release/tagd

corp_id=$($tagd --database "$database" org create --name bench | python3 -c 'import json,sys;print(json.load(sys.stdin)["corp_id"])')
TAGD_CREDENTIAL_PASSWORD=bench-password $tagd --database "$database" credential create \
  --corp-id "$corp_id" --username bench >/dev/null
auth="Basic $(printf 'bench:bench-password' | base64 -w0)"

run() {
  local cache_secs=$1
  TAGD_ADMIN_TOKEN=bench-admin-token-0123456789abcdef TAGD_LOG=warn $tagd serve --listen 127.0.0.1:$port --database "$database" \
    --basic-auth-cache-secs "$cache_secs" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf localhost:$port/readyz >/dev/null && break; sleep 0.1; done
  if [ "$cache_secs" != 0 ] && [ ! -f /tmp/tagd-bench-loaded-$$ ]; then
    # Customers through the admin API; labels through v2.
    python3 - "$port" "$corp_id" <<'PY'
import json, sys, urllib.request
port, corp = sys.argv[1], sys.argv[2]
def post(path, body, headers):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                 {"content-type": "application/json", **headers})
    urllib.request.urlopen(req).read()
for i in range(1, 10001):
    post(f"/admin/v1/orgs/{corp}/users", {"user_id": str(i)}, {"authorization": "Bearer bench"})
PY
    curl -sf -XPOST localhost:$port/v2/organization/labels -H "Authorization: $auth" \
      -H 'content-type: application/json' \
      -d '{"orgLabels":[{"name":"L0"},{"name":"L1"},{"name":"L2"},{"name":"L3"},{"name":"L4"},{"name":"L5"},{"name":"L6"},{"name":"L7"},{"name":"L8"},{"name":"L9"}]}' >/dev/null
    touch /tmp/tagd-bench-loaded-$$
  fi
  echo "cache_secs=$cache_secs: $(TAGD_BENCH_AUTH="$auth" wrk -t2 -c64 -d"$duration" -s bench/change_labels.lua http://127.0.0.1:$port | tail -n1)"
  kill -TERM $pid; wait $pid || true
}

echo "database=${database%%\?*} duration=$duration connections=64 ($(nproc) cores)"
run 30
run 0
rm -f /tmp/tagd-bench-loaded-$$
