-- W4: list a random user's tags (v5); one request in ten assigns a random number to a random
-- user's `t4` tag, so reads run beside writes.
dofile("bench/report.lua")
local token = os.getenv("TAGD_BENCH_TOKEN")
local app_id = os.getenv("TAGD_BENCH_APP_ID")
local corp_id = os.getenv("TAGD_BENCH_CORP_ID")
local group = os.getenv("TAGD_BENCH_NUMBER_GROUP")
local users = tonumber(os.getenv("TAGD_BENCH_USERS"))
local base = tonumber(os.getenv("TAGD_BENCH_USER_BASE"))
local write_fraction = tonumber(os.getenv("TAGD_BENCH_WRITE_FRACTION") or "0.1")
local headers = {
  ["Authorization"] = "Bearer " .. token,
  ["X-APP-ID"] = app_id,
  ["Content-Type"] = "application/json",
}

request = function()
  local user = base + math.random(0, users - 1)
  if math.random() < write_fraction then
    local body = string.format('{"corp_id":"%s","tags_group_id":"%s","user_id":"%d","value":"%d"}',
      corp_id, group, user, math.random(1, 1000000))
    return wrk.format("POST", "/api/v5/entity/user/tags/assign", headers, body)
  end
  return wrk.format("GET", string.format("/api/v5/entity/user/tags/list?corp_id=%s&user_id=%d", corp_id, user),
    headers)
end
