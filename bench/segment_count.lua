-- W5: the exact count of an audience, "t0 and not t1", over HTTP (segments/query, limit 0).
dofile("bench/report.lua")
local body = string.format(
  '{"corp_id":"%s","filter":{"all":[{"tag":"t0"},{"not":{"tag":"t1"}}]},"limit":0}',
  os.getenv("TAGD_BENCH_CORP_ID"))
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("TAGD_BENCH_TOKEN"),
  ["X-APP-ID"] = os.getenv("TAGD_BENCH_APP_ID"),
  ["Content-Type"] = "application/json",
}

request = function()
  return wrk.format("POST", "/api/v5/segments/query", headers, body)
end
