-- W2: v2 changeLabels with 100 labels a request. Each thread walks its own half of the
-- customers, adding all 100 labels to each; on a second pass it removes them, so every label
-- of every request is a change.
dofile("bench/report.lua")
local auth = os.getenv("TAGD_BENCH_AUTH")
local users = tonumber(os.getenv("TAGD_BENCH_USERS"))
local base = tonumber(os.getenv("TAGD_BENCH_USER_BASE"))
local headers = { ["Authorization"] = auth, ["Content-Type"] = "application/json" }
local labels = {}
for i = 0, 99 do labels[#labels + 1] = string.format('{"labelName":"label%03d"}', i) end
local all = "[" .. table.concat(labels, ",") .. "]"
local add = '{"add":' .. all .. ',"remove":[]}'
local remove = '{"add":[],"remove":' .. all .. '}'
local sent = 0

request = function()
  local half = math.floor(users / 2)
  local step = sent
  sent = sent + 1
  local customer = base + (thread_id or 0) * half + step % half
  local body = (math.floor(step / half) % 2 == 0) and add or remove
  return wrk.format("POST", "/v2/customers/" .. customer .. "/changeLabels", headers, body)
end
