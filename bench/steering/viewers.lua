-- wrk script of bench/steering/http.sh: every request GETs one playback
-- path as a viewer picked at random, with the viewer's session as its
-- bearer and its stream lease as ?stream=, the steady state of players
-- asking again. Arguments after "--" on the wrk command line:
--   wrk ... -s viewers.lua URL -- VIEWERS_FILE PATH
-- VIEWERS_FILE has a line "TOKEN STREAM_ID" per viewer (written by
-- bench/steering/viewers); "-" sends PATH without a session, for a build
-- before accounts, through the same per-request Lua call so that both
-- sides cost wrk the same.
-- The requests are formatted once in init; no response() callback, which
-- would make wrk parse every response into Lua and cap the throughput.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

local reqs = {}

function init(args)
  local file, path = args[1], args[2]
  if file == nil or path == nil then
    error("viewers.lua: want VIEWERS_FILE (or -) and PATH after --")
  end
  if file == "-" then
    reqs[1] = wrk.format("GET", path)
  else
    for line in io.lines(file) do
      local token, stream = line:match("^(%S+) (%S+)$")
      if token then
        reqs[#reqs + 1] = wrk.format("GET", path .. "&stream=" .. stream, { Authorization = "Bearer " .. token })
      end
    end
  end
  if #reqs == 0 then
    error("viewers.lua: no viewers in " .. file)
  end
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  return reqs[math.random(#reqs)]
end
