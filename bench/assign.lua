-- wrk script: v5 single assign (W1): each request sets a random number tag on a random user.
local token = os.getenv("TAGD_BENCH_TOKEN")
local app_id = os.getenv("TAGD_BENCH_APP_ID")
local corp_id = os.getenv("TAGD_BENCH_CORP_ID")
local group = os.getenv("TAGD_BENCH_GROUP")
local users = tonumber(os.getenv("TAGD_BENCH_USERS") or "10000")

request = function()
  local body = string.format(
    '{"corp_id":"%s","tags_group_id":"%s","user_id":"u%d","value":"%d"}',
    corp_id, group, math.random(1, users), math.random(1, 1000000))
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["X-APP-ID"] = app_id,
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/api/v5/entity/user/tags/assign", headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
