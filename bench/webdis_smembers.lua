-- W4's peer: SMEMBERS of a random user's set through webdis; one request in ten is an SADD of
-- a random member to a random user's set.
dofile("bench/report.lua")
local users = tonumber(os.getenv("TAGD_BENCH_USERS"))
local base = tonumber(os.getenv("TAGD_BENCH_USER_BASE"))

request = function()
  local user = base + math.random(0, users - 1)
  if math.random() < 0.1 then
    return wrk.format("GET", string.format("/SADD/user:%d/t4=%d.5", user, math.random(1, 1000000)))
  end
  return wrk.format("GET", string.format("/SMEMBERS/user:%d", user))
end
