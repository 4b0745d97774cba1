-- W1: v5 single assign; each request sets a random number on a random user's `w1` tag.
dofile("bench/report.lua")
local token = os.getenv("TAGD_BENCH_TOKEN")
local app_id = os.getenv("TAGD_BENCH_APP_ID")
local corp_id = os.getenv("TAGD_BENCH_CORP_ID")
local group = os.getenv("TAGD_BENCH_GROUP")
local users = tonumber(os.getenv("TAGD_BENCH_USERS") or "10000")
local base = tonumber(os.getenv("TAGD_BENCH_USER_BASE") or "1")
local headers = {
  ["Authorization"] = "Bearer " .. token,
  ["X-APP-ID"] = app_id,
  ["Content-Type"] = "application/json",
}

request = function()
  local body = string.format(
    '{"corp_id":"%s","tags_group_id":"%s","user_id":"%d","value":"%d"}',
    corp_id, group, base + math.random(0, users - 1), math.random(1, 1000000))
  return wrk.format("POST", "/api/v5/entity/user/tags/assign", headers, body)
end
