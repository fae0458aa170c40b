-- wrk script for benchmarks/api.py: every request a distinct body (and Idempotency-Key).
-- wrk ... -s benchmarks/wrk_post.lua URL -- <token or -> <sample count> <run tag>
-- Request n of thread t names sample s-<(t * 7919 + n) mod count>; statuses are counted per thread.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  token = args[1]
  nkeys = tonumber(args[2])
  tag = args[3]
  n = 0
  c2xx, c503, cother = 0, 0, 0
end

function request()
  n = n + 1
  local body = '{"model":"bench","samples":["s-' .. ((tid * 7919 + n) % nkeys) .. '"]}'
  local headers = {["Content-Type"] = "application/json", ["Idempotency-Key"] = tag .. "-" .. tid .. "-" .. n}
  if token ~= "-" then
    headers["Authorization"] = "Bearer " .. token
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    c2xx = c2xx + 1
  elseif status == 503 then
    c503 = c503 + 1
  else
    cother = cother + 1
  end
end

function done(summary, latency, requests)
  local ok, busy, other = 0, 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("c2xx")
    busy = busy + thread:get("c503")
    other = other + thread:get("cother")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"status_2xx":%d,"status_503":%d,"status_other":%d,' ..
    '"socket_errors":%d,"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
    summary.requests, summary.duration, ok, busy, other, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
