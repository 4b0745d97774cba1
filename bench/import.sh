#!/usr/bin/env bash
# Bulk import and export throughput (issue 6).
#   bench/import.sh [DATABASE_URL] [USERS]
# Builds the release binary; creates an organization with two tag groups (define `vip`,
# number `spend`) through the v5 API on a fresh database; writes a CSV of USERS users x 2
# assignments (default 100,000 users: 200,000 rows); then times, with `tagd import`:
#   1. the first import (every user and assignment new),
#   2. the same file again (every row unchanged),
#   3. `tagd export` of the organization to CSV, and the import of that export (unchanged).
# DATABASE_URL defaults to a new SQLite file; with a postgres:// URL the run uses a new schema.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
users="${2:-100000}"
port=18081
schema=""
database="${1:-sqlite://$work/bench.db}"
if [[ "$database" == postgres* ]]; then
  schema="tagd_bench_$$"
  psql "$database" -qc "CREATE SCHEMA $schema"
  base="$database"
  sep='?'; [[ "$database" == *\?* ]] && sep='&'
  database="$database${sep}options=-c%20search_path%3D$schema"
fi
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  [ -n "$schema" ] && PGOPTIONS="-c client_min_messages=warning" psql "$base" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p tagd
tagd=target/release/tagd

corp_id=$($tagd --database "$database" org create --name bench | jq -r .corp_id)
app=$($tagd --database "$database" app create --corp-id "$corp_id" --name bench)
TAGD_ADMIN_TOKEN=bench-admin-token-0123456789abcdef TAGD_LOG=warn $tagd serve --listen 127.0.0.1:$port --database "$database" >/dev/null 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf localhost:$port/readyz >/dev/null && break; sleep 0.1; done
token=$(curl -sf -XPOST localhost:$port/api/v5/auth/token -H 'content-type: application/json' \
  -d "$(jq -c '{app_id, app_secret}' <<<"$app")" | jq -r .data.access_token)
for group in 'VIP vip define' 'Spend spend number'; do
  read -r name variable attribute <<<"$group"
  curl -sf -XPOST localhost:$port/api/v5/entity/tags/group/create \
    -H "Authorization: Bearer $token" -H "X-APP-ID: $(jq -r .app_id <<<"$app")" \
    -H 'content-type: application/json' \
    -d "{\"name\":\"$name\",\"variable_name\":\"$variable\",\"description\":\"\",\"attribute\":\"$attribute\",\"category\":\"bench\",\"corp_id\":\"$corp_id\"}" >/dev/null
done
kill "$server"; wait "$server" 2>/dev/null || true; server=""

awk -v n="$users" 'BEGIN {
  print "user_id,variable_name,value";
  for (i = 0; i < n; i++) {
    printf "c%d,vip,%s\nc%d,spend,%d.5\n", i, (i % 3 ? "False" : "True"), i, i;
  }
}' >"$work/rows.csv"
echo "backend: ${database%%:*}, rows: $((users * 2)) ($(du -h "$work/rows.csv" | cut -f1)), release build"

summary() { jq -c '{rows_read, applied, unchanged, refused, users_created, elapsed_secs, rows_per_sec}'; }
echo -n "first import:   "; $tagd --database "$database" import --corp-id "$corp_id" --progress-every 0 "$work/rows.csv" 2>/dev/null | summary
echo -n "same file again: "; $tagd --database "$database" import --corp-id "$corp_id" --progress-every 0 "$work/rows.csv" 2>/dev/null | summary
echo -n "export:         "; $tagd --database "$database" export --corp-id "$corp_id" --progress-every 0 "$work/export.csv" 2>/dev/null \
  | jq -c '{rows_written, elapsed_secs, rows_per_sec}'
echo -n "export again in: "; $tagd --database "$database" import --corp-id "$corp_id" --progress-every 0 "$work/export.csv" 2>/dev/null | summary
