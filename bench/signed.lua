-- wrk script: cycles through pre-signed Twilio-style requests, one per line of a file:
--   <path>\t<X-Twilio-Signature>\t<form-encoded body>
-- Usage: wrk -t1 -c32 -d10s -s bench/signed.lua http://127.0.0.1:PORT -- requests.tsv NTHREADS
-- Each wrk thread takes every NTHREADS-th line, so threads never send the same request.
-- done() prints one JSON line (latencies in microseconds) for bench/run.py to read.

local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local reqs = {}
local idx = 0

function init(args)
  local file = args[1]
  local nthreads = tonumber(args[2]) or 1
  local me = tid or 0
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == me then
      local path, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      if path then
        local headers = {}
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["X-Twilio-Signature"] = sig
        headers["User-Agent"] = "TwilioProxy/1.1"
        table.insert(reqs, wrk.format("POST", path, headers, body))
      end
    end
    i = i + 1
  end
  if #reqs == 0 then
    error("no requests read from " .. tostring(file))
  end
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
