-- Shared by the suite's wrk scripts: a fixed seed per thread, and one summary line that
-- bench/suite.py reads (`key=value` pairs).
local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(42 + (thread_id or 0))
end

function done(summary, latency, requests)
  io.write(string.format("requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
