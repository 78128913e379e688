-- wrk script for bench/run.sh: POSTs one fixed chat-completions body as JSON.
--   BENCH_BODY    path of the request body (required)
--   BENCH_STREAM  if set, sent as header X-Bench-Stream (the upstream answers with SSE)
--   BENCH_CHECK   if "1", every response body is checked to end the way it must (slower wrk:
--                 used only for the many-streams run, where correctness matters, not speed)
-- At the end it prints one line that run.sh parses:
--   RESULT requests= duration_us= rps= bytes= p50_us= p90_us= p99_us= max_us=
--          err_connect= err_read= err_write= err_timeout= non2xx= bad_body=

local path = assert(os.getenv("BENCH_BODY"), "BENCH_BODY is not set")
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "aigw-bench/1"
local stream = os.getenv("BENCH_STREAM")
if stream and stream ~= "" then
  wrk.headers["X-Bench-Stream"] = stream
  wrk.headers["Accept"] = "text/event-stream"
end

-- Per-thread counters are read back in done() through the thread objects.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

if os.getenv("BENCH_CHECK") == "1" then
  bad_body = 0
  local want = stream and stream ~= "" and "data: [DONE]" or '"usage"'
  function response(status, headers, rbody)
    if status >= 200 and status < 300 and not (rbody and rbody:find(want, 1, true)) then
      bad_body = bad_body + 1
    end
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (tonumber(t:get("bad_body")) or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f bytes=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d non2xx=%d bad_body=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6), summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status, bad))
end
