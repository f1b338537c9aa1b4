-- wrk script for the benchmark: replays a request list prepared by bench/run.py
-- (one file per thread, so each thread owns its students in write scenarios)
-- and prints one JSON line with throughput, latency percentiles and errors.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  requests = {}
  local path = args[1] .. "." .. id
  for line in io.lines(path) do
    local method, url, body = line:match("^(%S+)\t(%S+)\t?(.*)$")
    -- wrk.format only adds wrk.headers (the -H options) when given no headers of its own
    local headers = {}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    if body ~= nil and body ~= "" then
      headers["Content-Type"] = "application/json"
    else
      body = nil
    end
    table.insert(requests, wrk.format(method, url, headers, body))
  end
  index = 0
  s2xx, s4xx, s5xx, sother = 0, 0, 0, 0
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function response(status, headers, body)
  if status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  elseif status >= 200 and status < 300 then
    s2xx = s2xx + 1
  else
    sother = sother + 1
  end
end

function done(summary, latency, requests)
  local c2, c4, c5, co = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    c2 = c2 + thread:get("s2xx")
    c4 = c4 + thread:get("s4xx")
    c5 = c5 + thread:get("s5xx")
    co = co + thread:get("sother")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "status_2xx": %d, "status_4xx": %d, "status_5xx": %d, "status_other": %d, '
      .. '"socket_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, c2, c4, c5, co,
    e.connect + e.read + e.write, e.timeout))
end
