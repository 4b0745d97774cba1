-- wrk script: v2 changeLabels against random customers, half adds and half removes of one of
-- ten labels, so about half the requests write. Credentials come from the environment.
local auth = os.getenv("TAGD_BENCH_AUTH")
local customers = tonumber(os.getenv("TAGD_BENCH_CUSTOMERS") or "10000")

request = function()
  local customer = math.random(1, customers)
  local label = "L" .. math.random(0, 9)
  local body
  if math.random() < 0.5 then
    body = '{"add":[{"labelName":"' .. label .. '"}],"remove":[]}'
  else
    body = '{"add":[],"remove":[{"labelName":"' .. label .. '"}]}'
  end
  local headers = {
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/v2/customers/" .. customer .. "/changeLabels", headers, body)
end

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("requests=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
