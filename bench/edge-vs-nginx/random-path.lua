-- wrk script: every request GETs a path picked at random from a file of
-- paths (one a line), given after "--" on the wrk command line:
--   wrk ... -s random-path.lua URL -- PATHS_FILE
-- Each wrk thread gets its own seed so that threads do not walk the same
-- sequence. No response() callback: defining one makes wrk parse every
-- response into Lua and would cap the throughput being measured.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

local paths = {}

function init(args)
  local file = args[1]
  if file == nil then
    error("random-path.lua: want a paths file after --")
  end
  for line in io.lines(file) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  if #paths == 0 then
    error("random-path.lua: no paths in " .. file)
  end
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
