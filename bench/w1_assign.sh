#!/usr/bin/env bash
# W1 (issue 6): durable single assign over HTTP, 64 connections, on a backend.
#   bench/w1_assign.sh [DURATION] [DATABASE_URL]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-30s}"
database="${2:-sqlite://$(mktemp -d)/w1.db}"
port=18081
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p tagd
TAGD_ADMIN_TOKEN=bench TAGD_LOG=warn target/release/tagd serve --listen 127.0.0.1:$port \
  --database "$database" --rate-limit-per-sec 1000000 --rate-limit-burst 1000000 >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf localhost:$port/readyz >/dev/null && break; sleep 0.1; done
eval "$(python3 - "$port" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
base = f"http://127.0.0.1:{sys.argv[1]}"
def call(path, body, headers):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"content-type": "application/json", **headers})
    return json.loads(urllib.request.urlopen(req).read())
admin = {"authorization": "Bearer bench"}
corp = call("/admin/v1/orgs", {"name": "bench"}, admin)["corp_id"]
app = call(f"/admin/v1/orgs/{corp}/apps", {"name": "bench"}, admin)
token = call("/api/v5/auth/token", {"app_id": app["app_id"], "app_secret": app["app_secret"]}, {})["data"]["access_token"]
v5 = {"authorization": f"Bearer {token}", "x-app-id": app["app_id"]}
group = call("/api/v5/entity/tags/group/create", {"name": "spend", "variable_name": "spend", "description": "", "attribute": "number", "category": "c", "corp_id": corp}, v5)["data"]["tags_group_id"]
with ThreadPoolExecutor(16) as pool:
    list(pool.map(lambda i: call("/api/v5/user/create", {"corp_id": corp, "user_id": f"u{i}"}, v5), range(1, 10001)))
print(f"export TAGD_BENCH_TOKEN={token} TAGD_BENCH_APP_ID={app['app_id']} TAGD_BENCH_CORP_ID={corp} TAGD_BENCH_GROUP={group}")
PY
)"
echo "W1 assign database=${database%%\?*} $(wrk -t2 -c64 -d"$duration" -s bench/assign.lua http://127.0.0.1:$port | tail -n1)"
