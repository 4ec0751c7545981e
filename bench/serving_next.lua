-- wrk script: POST /next/<user> with a random user and listen, as the simulator sends them.
-- Arguments (after `--`): users tracks seed. Prints one JSON line (prefixed "WRK_JSON ") when done.
local users, tracks = 12000, 50000

function init(args)
  users = tonumber(args[1]) or users
  tracks = tonumber(args[2]) or tracks
  math.randomseed((tonumber(args[3]) or 0) + tonumber(tostring(wrk.thread):match("0x(%x+)") or "0", 16) % 1000)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  local user = math.random(0, users - 1)
  local body = string.format('{"track": %d, "time": %.2f}', math.random(0, tracks - 1), math.random())
  return wrk.format(nil, "/next/" .. user, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}, "latency_us": {"p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d, ' ..
    '"mean": %.1f}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
