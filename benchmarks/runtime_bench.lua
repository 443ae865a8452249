-- wrk script: POST /messages with distinct visitors (mode "first") or into seeded conversations ("follow").
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  seeded = tonumber(args[2] or "1")
  token = args[3] or ""
  path = args[4]
end

function request()
  counter = counter + 1
  local visitor, conversation
  if mode == "first" then
    visitor = "bench-" .. tid .. "-" .. counter
    conversation = "conv-" .. tid .. "-" .. counter
  else
    local k = (counter * 7919 + tid) % seeded
    visitor = "seed-" .. k
    conversation = "seed-conv-" .. k
  end
  local body = '{"visitor_id":"' .. visitor .. '","conversation_id":"' .. conversation ..
               '","role":"visitor","text":"How much does it cost?"}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   ["Authorization"] = "Bearer " .. token}, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status + summary.errors.connect + summary.errors.read +
                 summary.errors.write + summary.errors.timeout
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, non2xx, latency:percentile(50), latency:percentile(99)))
end
