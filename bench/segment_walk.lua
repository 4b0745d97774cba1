-- W6: one client pages through a five-leaf audience to its end, again and again, following
-- `next_cursor` (run with one connection, so pages come one after another).
dofile("bench/report.lua")
local corp_id = os.getenv("TAGD_BENCH_CORP_ID")
local filter = os.getenv("TAGD_BENCH_FILTER")
local limit = tonumber(os.getenv("TAGD_BENCH_PAGE"))
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("TAGD_BENCH_TOKEN"),
  ["X-APP-ID"] = os.getenv("TAGD_BENCH_APP_ID"),
  ["Content-Type"] = "application/json",
}
local cursor = nil

request = function()
  local body
  if cursor then
    body = string.format('{"corp_id":"%s","filter":%s,"limit":%d,"cursor":"%s"}', corp_id, filter, limit, cursor)
  else
    body = string.format('{"corp_id":"%s","filter":%s,"limit":%d}', corp_id, filter, limit)
  end
  return wrk.format("POST", "/api/v5/segments/query", headers, body)
end

response = function(status, headers, body)
  cursor = string.match(body, '"next_cursor":"([^"]+)"')
end
