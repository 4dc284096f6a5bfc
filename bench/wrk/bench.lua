-- One wrk script for every endpoint of the bench, driven by environment variables (set by bench/run.py):
--   BENCH_MODE   get | patch | comment
--   BENCH_PATH   the path; "{id}" in it is replaced by an issue id from BENCH_IDS
--   BENCH_IDS    "id:version,id:version,..." (a random sample of issues; versions matter for patch)
--   BENCH_TOKEN  API token (sent as "Authorization: Token ..."); empty for the floors
--   BENCH_THREADS the -t given to wrk; run with -t N -c N so each thread owns exactly ONE connection
--
-- PATCH without conflicts: each thread owns its own slice of BENCH_IDS (index % threads == thread id), so no
-- two connections ever touch the same issue. With one connection per thread, requests and responses strictly
-- alternate, so response() knows which issue it answers; it reads "version" from the 200 body (or
-- "current_version" from a 409) and the next PATCH of that issue sends it. Every PATCH changes the title to a
-- new value, so each one is a real write (version + 1, a title_changed event), never a no-op.
-- The done() hook prints one line "BENCH_JSON {...}" that bench/run.py parses.

local thread_counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_counter)
  thread_counter = thread_counter + 1
  table.insert(threads, thread)
end

local mode, path_tpl, token
local ids, versions = {}, {}
local pos, sent_id, counter = 0, nil, 0

function init(args)
  mode = os.getenv("BENCH_MODE") or "get"
  path_tpl = os.getenv("BENCH_PATH") or "/"
  token = os.getenv("BENCH_TOKEN") or ""
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local index = 0
  for id, version in string.gmatch(os.getenv("BENCH_IDS") or "", "(%d+):(%d+)") do
    if index % nthreads == tid then
      table.insert(ids, id)
      versions[id] = tonumber(version)
    end
    index = index + 1
  end
  wrk.headers["Accept"] = "application/json"
  if token ~= "" then
    wrk.headers["Authorization"] = "Token " .. token
  end
  if mode ~= "get" then
    wrk.headers["Content-Type"] = "application/json"
  end
end

local function next_id()
  if #ids == 0 then
    return "1"
  end
  pos = pos % #ids + 1
  return ids[pos]
end

function request()
  local id = next_id()
  sent_id = id
  local path = string.gsub(path_tpl, "{id}", id)
  counter = counter + 1
  if mode == "patch" then
    local body = string.format('{"title": "Bench edit %d-%d", "version": %d}', tid, counter, versions[id])
    return wrk.format("PATCH", path, nil, body)
  elseif mode == "comment" then
    local body = string.format('{"body": "Bench comment %d-%d"}', tid, counter)
    return wrk.format("POST", path, nil, body)
  end
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if mode ~= "patch" or sent_id == nil then
    return
  end
  local version
  if status == 200 then
    version = string.match(body, '"version":%s*(%d+)')
  elseif status == 409 then
    version = string.match(body, '"current_version":%s*(%d+)')
  end
  if version then
    versions[sent_id] = tonumber(version)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, "errors_read": %d, ' ..
    '"errors_write": %d, "errors_status": %d, "errors_timeout": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
