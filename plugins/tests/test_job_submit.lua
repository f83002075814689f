-- Unit tests for plugins/job_submit.lua under lua5.3 with a stub `slurm` table.
-- Run: lua5.3 plugins/tests/test_job_submit.lua  (from the repository root)
-- Prints "N passed, 0 failed" and exits non-zero on any failure.

local logs = {}
slurm = {
  SUCCESS = 0,
  ERROR = -1,
  log_info = function(fmt, ...) table.insert(logs, { "info", string.format(fmt, ...) }) end,
  log_error = function(fmt, ...) table.insert(logs, { "error", string.format(fmt, ...) }) end,
}

local here = arg[0]:match("^(.*)/tests/[^/]+$") or "plugins"
dofile(here .. "/job_submit.lua")
local M = slurmopt_job_submit
local SITE = M.SITE

local tmpdir = os.getenv("TMPDIR") or "/tmp"
local routing = string.format("%s/slurmopt-routing-test-%d.txt", tmpdir, math.random(1, 1e9))
local NOW = 1800000000

local function write_routes(text)
  local fh = assert(io.open(routing, "w"))
  fh:write(text)
  fh:close()
end

local GOOD = table.concat({
  "# slurmopt routing",
  "format 1",
  "generated_at " .. (NOW - 10),
  "route gpu h100,a100,gpu",
  "route gpu:a100 a100,gpu",
  "route cpu cpu",
  "",
}, "\n")

SITE.routing_file = routing
local passed, failed = 0, 0
local function test(name, fn)
  logs = {}
  write_routes(GOOD)
  SITE.set_list, SITE.record_allowed, SITE.route_without_partition = false, true, false
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    io.stderr:write("FAIL " .. name .. ": " .. tostring(err) .. "\n")
  end
end

local function eq(a, b, what)
  if a ~= b then
    error(string.format("%s: expected %s, got %s", what or "value", tostring(b), tostring(a)), 2)
  end
end

-- class detection --------------------------------------------------------------
test("class cpu", function() eq(M.job_class({}), "cpu") end)
test("class gpu untyped 22.05", function() eq(M.job_class({ tres_per_node = "gres:gpu:2" }), "gpu") end)
test("class gpu untyped 24.11", function() eq(M.job_class({ tres_per_job = "gres/gpu:1" }), "gpu") end)
test("class typed", function() eq(M.job_class({ tres_per_node = "gres/gpu:a100:2" }), "gpu:a100") end)
test("class typed no count", function() eq(M.job_class({ tres_per_task = "gres:gpu:h100" }), "gpu:h100") end)
test("class plain gres", function() eq(M.job_class({ gres = "gpu:v100:1" }), "gpu:v100") end)
test("class other gres then gpu", function()
  eq(M.job_class({ tres_per_node = "gres/shard:1,gres/gpu:t4:1" }), "gpu:t4")
end)
test("class non-gpu gres", function() eq(M.job_class({ tres_per_node = "gres/shard:2" }), "cpu") end)

-- opt-in -----------------------------------------------------------------------
test("opt-in auto", function() eq(M.opted_in({ partition = "auto" }), true) end)
test("opt-in auto in list", function() eq(M.opted_in({ partition = "cpu,auto" }), true) end)
test("no opt-in pinned", function() eq(M.opted_in({ partition = "a100" }), false) end)
test("no partition default off", function() eq(M.opted_in({}), false) end)
test("no partition when enabled", function()
  SITE.route_without_partition = true
  eq(M.opted_in({ partition = "" }), true)
end)
test("comment tag", function()
  eq(M.opted_in({ partition = "a100", comment = "run slurmopt:auto please" }), true)
end)

-- routing ----------------------------------------------------------------------
test("route untyped gpu", function()
  local job = { partition = "auto", tres_per_node = "gres:gpu:1" }
  M.route(job, NOW)
  eq(job.partition, "h100", "partition")
  eq(job.admin_comment, "slurmopt:allowed=h100,a100,gpu", "admin_comment")
end)
test("route list", function()
  SITE.set_list = true
  local job = { partition = "auto", tres_per_node = "gres/gpu:a100:1" }
  M.route(job, NOW)
  eq(job.partition, "a100,gpu", "partition")
end)
test("route keeps admin comment", function()
  local job = { partition = "auto", admin_comment = "site note" }
  M.route(job, NOW)
  eq(job.partition, "cpu")
  eq(job.admin_comment, "site note slurmopt:allowed=cpu")
end)
test("no record when disabled", function()
  SITE.record_allowed = false
  local job = { partition = "auto" }
  M.route(job, NOW)
  eq(job.admin_comment, nil)
end)
test("not opted in unchanged", function()
  local job = { partition = "a100", tres_per_node = "gres:gpu:1" }
  eq(M.route(job, NOW), "not opted in")
  eq(job.partition, "a100")
end)
test("no route for class", function()
  local job = { partition = "auto", tres_per_node = "gres:gpu:t4:1" }
  local msg = M.route(job, NOW)
  eq(job.partition, "")
  assert(msg:find("no route"), msg)
end)
test("missing file: pseudo partition removed", function()
  os.remove(routing)
  local job = { partition = "auto" }
  local msg = M.route(job, NOW)
  eq(job.partition, "")
  assert(msg:find("cannot open"), msg)
  assert(msg:find("pseudo partition removed"), msg)
end)
test("missing file keeps the rest of the list", function()
  os.remove(routing)
  local job = { partition = "v100,auto,t4" }
  M.route(job, NOW)
  eq(job.partition, "v100,t4")
end)
test("comment opt-in without pseudo partition is untouched on failure", function()
  os.remove(routing)
  local job = { partition = "a100", comment = "slurmopt:auto" }
  M.route(job, NOW)
  eq(job.partition, "a100")
end)
test("stale file", function()
  local job = { partition = "auto" }
  local msg = M.route(job, NOW + SITE.max_age + 100)
  eq(job.partition, "")
  assert(msg:find("stale"), msg)
end)
test("bad format version", function()
  write_routes("format 2\ngenerated_at " .. NOW .. "\nroute cpu cpu\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW):find("format"))
  eq(job.partition, "")
end)
test("no generated_at", function()
  write_routes("format 1\nroute cpu cpu\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW):find("generated_at"))
  eq(job.partition, "")
end)
test("malformed route line", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\nroute cpu\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW):find("malformed"))
  eq(job.partition, "")
end)
test("unknown record", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\nbogus x\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW):find("unknown"))
end)
test("env override of routing file", function()
  -- os.getenv cannot be set from Lua: check the SITE path is what route uses
  -- when SLURMOPT_ROUTING_FILE is unset in this test run.
  if os.getenv("SLURMOPT_ROUTING_FILE") == nil then
    local job = { partition = "auto" }
    M.route(job, NOW)
    eq(job.partition, "cpu")
  end
end)

-- the Slurm entry points --------------------------------------------------------
test("submit routes and succeeds", function()
  local now_real = os.time()
  write_routes("format 1\ngenerated_at " .. now_real .. "\nroute cpu cpu\n")
  local job = { name = "j", partition = "auto" }
  eq(slurm_job_submit(job, {}, 1000), slurm.SUCCESS)
  eq(job.partition, "cpu")
end)
test("submit fails open on lua error", function()
  -- A job_desc whose fields raise on access, as a broken Slurm binding might.
  local job = setmetatable({}, { __index = function(_, k) error("boom " .. k) end })
  eq(slurm_job_submit(job, {}, 1000), slurm.SUCCESS)
  eq(logs[#logs][1], "error")
  assert(logs[#logs][2]:find("accepted unchanged"))
end)
test("submit fails open mid-way and still strips the pseudo partition", function()
  write_routes("format 1\ngenerated_at " .. os.time() .. "\nroute cpu cpu\n")
  local store = { partition = "auto" }
  local job = setmetatable({}, {
    __index = function(_, k)
      if k == "tres_per_node" then error("boom") end
      return store[k]
    end,
    __newindex = store,
  })
  eq(slurm_job_submit(job, {}, 1000), slurm.SUCCESS)
  eq(logs[#logs][1], "error")
  eq(store.partition, "")
end)
test("submit fails open on assignment error", function()
  write_routes("format 1\ngenerated_at " .. os.time() .. "\nroute cpu cpu\n")
  local store = { partition = "auto" }
  local job = setmetatable({}, {
    __index = store,
    __newindex = function() error("read-only") end,
  })
  eq(slurm_job_submit(job, {}, 1000), slurm.SUCCESS)
  eq(store.partition, "auto")
end)
test("modify passes through", function()
  local job = { partition = "x" }
  eq(slurm_job_modify(job, {}, {}, 0), slurm.SUCCESS)
  eq(job.partition, "x")
end)

os.remove(routing)
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
