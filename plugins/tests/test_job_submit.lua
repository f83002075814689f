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

-- Slurm's partition list as job_submit/lua hands it over (keyed by name).
local function part(name, extra)
  local p = { name = name, state_up = 3, max_time = 4294967295, flag_default = 0 }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end
local PARTS = {
  cpu = part("cpu", { flag_default = 1 }), h100 = part("h100"), a100 = part("a100"),
  gpu = part("gpu"), v100 = part("v100"), t4 = part("t4"),
}
local GPUS = table.concat({
  "gpus cpu -", "gpus h100 h100", "gpus a100 a100", "gpus gpu a100,h100",
  "gpus v100 v100", "gpus t4 t4", "",
}, "\n")

SITE.routing_file = routing
local passed, failed = 0, 0
local function test(name, fn)
  logs = {}
  write_routes(GOOD)
  SITE.set_list, SITE.record_allowed, SITE.route_without_partition = false, true, false
  SITE.fallback, SITE.partition_gpus, M.learned_gpus = {}, {}, nil
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
  M.route(job, NOW, PARTS)
  eq(job.partition, "h100", "partition")
  eq(job.admin_comment, "slurmopt:allowed=h100,a100,gpu", "admin_comment")
end)
test("route list", function()
  SITE.set_list = true
  local job = { partition = "auto", tres_per_node = "gres/gpu:a100:1" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "a100,gpu", "partition")
end)
test("route keeps admin comment", function()
  local job = { partition = "auto", admin_comment = "site note" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "cpu")
  eq(job.admin_comment, "site note slurmopt:allowed=cpu")
end)
test("no record when disabled", function()
  SITE.record_allowed = false
  local job = { partition = "auto" }
  M.route(job, NOW, PARTS)
  eq(job.admin_comment, nil)
end)
test("not opted in unchanged", function()
  local job = { partition = "a100", tres_per_node = "gres:gpu:1" }
  eq(M.route(job, NOW, PARTS), "not opted in")
  eq(job.partition, "a100")
end)
test("no route for class", function()
  local job = { partition = "auto", tres_per_node = "gres:gpu:t4:1" }
  local msg = M.route(job, NOW, PARTS)
  -- GPU layout unknown: every partition that admits the job; Slurm picks one with T4s
  eq(job.partition, "a100,cpu,gpu,h100,t4,v100")
  assert(msg:find("no route"), msg)
end)
test("missing file: pseudo partition removed", function()
  os.remove(routing)
  local job = { partition = "auto" }
  local msg = M.route(job, NOW, PARTS)
  eq(job.partition, "")  -- a CPU job, GPU layout unknown: Slurm's default partition
  assert(msg:find("cannot open"), msg)
  assert(msg:find("fallback"), msg)
end)
test("missing file keeps the rest of the list", function()
  os.remove(routing)
  local job = { partition = "v100,auto,t4" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "v100,t4")
end)
test("comment opt-in without pseudo partition is untouched on failure", function()
  os.remove(routing)
  local job = { partition = "a100", comment = "slurmopt:auto" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "a100")
end)
test("stale file", function()
  local job = { partition = "auto" }
  local msg = M.route(job, NOW + SITE.max_age + 100, PARTS)
  eq(job.partition, "")
  assert(msg:find("stale"), msg)
end)
test("bad format version", function()
  write_routes("format 2\ngenerated_at " .. NOW .. "\nroute cpu cpu\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW, PARTS):find("format"))
  eq(job.partition, "")
end)
test("no generated_at", function()
  write_routes("format 1\nroute cpu cpu\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW, PARTS):find("generated_at"))
  eq(job.partition, "")
end)
test("malformed route line", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\nroute cpu\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW, PARTS):find("malformed"))
  eq(job.partition, "")
end)
test("unknown record", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\nbogus x\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW, PARTS):find("unknown"))
end)
test("env override of routing file", function()
  -- os.getenv cannot be set from Lua: check the SITE path is what route uses
  -- when SLURMOPT_ROUTING_FILE is unset in this test run.
  if os.getenv("SLURMOPT_ROUTING_FILE") == nil then
    local job = { partition = "auto" }
    M.route(job, NOW, PARTS)
    eq(job.partition, "cpu")
  end
end)

-- the Slurm entry points --------------------------------------------------------
test("submit routes and succeeds", function()
  local now_real = os.time()
  write_routes("format 1\ngenerated_at " .. now_real .. "\nroute cpu cpu\n")
  local job = { name = "j", partition = "auto" }
  eq(slurm_job_submit(job, PARTS, 1000), slurm.SUCCESS)
  eq(job.partition, "cpu")
end)
test("submit fails open on lua error", function()
  -- A job_desc whose fields raise on access, as a broken Slurm binding might.
  local job = setmetatable({}, { __index = function(_, k) error("boom " .. k) end })
  eq(slurm_job_submit(job, {}, 1000), slurm.SUCCESS)
  eq(logs[#logs][1], "error")
  assert(logs[#logs][2]:find("accepted as Slurm places it"))
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

-- fail open by construction ------------------------------------------------------
local function printable(s)
  return not s:find("[^\32-\126]")
end
local function submit(job)
  eq(slurm_job_submit(job, PARTS, 1000), slurm.SUCCESS, "submit rc")
  return logs[#logs][2]
end

test("random bytes: fallback, log escaped", function()
  local bytes = {}
  for i = 1, 4096 do bytes[i] = string.char((i * 97 + 13) % 256) end
  write_routes(table.concat(bytes))
  local job = { name = "x\0\27[31m\255", partition = "auto", tres_per_job = "gres:gpu:1" }
  local line = submit(job)
  assert(printable(line), line)
  assert(line:find("x\\x00\\x1b%[31m\\xff"), line)
  eq(job.partition, "a100,cpu,gpu,h100,t4,v100")
end)
test("garbage with a format line: the bad line is escaped in the log", function()
  write_routes("format 1\ngenerated_at " .. os.time() .. "\nroute gpu \1\2\3\255\n")
  local line = submit({ name = "j", partition = "auto" })
  assert(printable(line), line)
  assert(line:find("malformed"), line)
end)
test("route to a partition that does not exist: fallback", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\nroute gpu nosuch\n" .. GPUS)
  local job = { partition = "auto", tres_per_job = "gres:gpu:1" }
  local msg = M.route(job, NOW, PARTS)
  assert(msg:find("no usable partition"), msg)
  eq(job.partition, "a100,gpu,h100,t4,v100")
  eq(job.admin_comment, "slurmopt:allowed=a100,gpu,h100,t4,v100")
end)
test("route to auto: fallback, never the pseudo partition", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\nroute cpu auto\n" .. GPUS)
  local job = { partition = "auto" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "cpu")
end)
test("route with some unknown partitions keeps the real ones in order", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\nroute gpu nosuch,a100,auto,h100\n")
  local job = { partition = "auto", tres_per_job = "gres:gpu:1" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "a100")
  eq(job.admin_comment, "slurmopt:allowed=a100,h100")
end)
test("generated_at in the future: fallback", function()
  write_routes("format 1\ngenerated_at " .. (NOW + 3600) .. "\nroute cpu h100\n" .. GPUS)
  local job = { partition = "auto" }
  local msg = M.route(job, NOW, PARTS)
  assert(msg:find("future"), msg)
  eq(job.partition, "cpu")
end)
test("a little clock skew is accepted", function()
  write_routes("format 1\ngenerated_at " .. (NOW + 30) .. "\nroute cpu cpu\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW, PARTS):find("routed"))
end)
test("file over max_bytes: not read, fallback", function()
  local fh = assert(io.open(routing, "w"))
  fh:write("format 1\ngenerated_at " .. NOW .. "\n")
  local filler = string.rep("# " .. string.rep("x", 98) .. "\n", 1000)
  for _ = 1, 2 do fh:write(filler) end
  fh:write("route cpu cpu\n")
  fh:close()
  local job = { partition = "auto" }
  local msg = M.route(job, NOW, PARTS)
  assert(msg:find("larger than"), msg)
  eq(job.partition, "")
end)
test("file over max_lines: fallback", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\n" .. string.rep("\n", SITE.max_lines) ..
    "route cpu cpu\n")
  local job = { partition = "auto" }
  assert(M.route(job, NOW, PARTS):find("more than"))
end)
test("stale file still teaches the GPU layout", function()
  write_routes("format 1\ngenerated_at " .. (NOW - 5000) .. "\nroute gpu h100\n" .. GPUS)
  local job = { partition = "auto", tres_per_node = "gres:gpu:h100:1" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "gpu,h100")
  local cpu = { partition = "auto" }
  M.route(cpu, NOW, PARTS)
  eq(cpu.partition, "cpu")
end)
test("learned layout survives a later garbage file", function()
  write_routes("format 1\ngenerated_at " .. (NOW - 5000) .. "\n" .. GPUS)
  M.route({ partition = "auto" }, NOW, PARTS)
  write_routes("\0\1\2 garbage")
  local job = { partition = "auto", tres_per_node = "gres:gpu:v100:1" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "v100")
end)
test("site GPU table", function()
  os.remove(routing)
  SITE.partition_gpus = { cpu = "", h100 = "h100", gpu = "a100,h100", a100 = "a100" }
  local job = { partition = "auto", tres_per_node = "gres:gpu:a100:1" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "a100,gpu,t4,v100") -- t4, v100: layout unknown, Slurm decides
end)
test("site fallback list, unknown partitions dropped", function()
  os.remove(routing)
  SITE.fallback = { gpu = "nosuch,h100,a100" }
  local job = { partition = "auto", tres_per_job = "gres:gpu:2" }
  local msg = M.route(job, NOW, PARTS)
  eq(job.partition, "h100,a100")
  assert(msg:find("site fallback"), msg)
end)
test("site fallback list with nothing usable: computed set", function()
  os.remove(routing)
  SITE.fallback = { gpu = "nosuch" }
  local job = { partition = "auto", tres_per_job = "gres:gpu:2" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "a100,cpu,gpu,h100,t4,v100")
end)
test("a job that named no partition falls back to Slurm's default", function()
  SITE.route_without_partition = true
  os.remove(routing)
  local job = { tres_per_job = "gres:gpu:1" }
  local msg = M.route(job, NOW, PARTS)
  eq(job.partition, "")
  assert(msg:find("named none"), msg)
end)
test("own list is kept on fallback", function()
  write_routes("\255\254")
  local job = { partition = "auto,v100", tres_per_job = "gres:gpu:1" }
  M.route(job, NOW, PARTS)
  eq(job.partition, "v100")
end)

-- partition access rules -------------------------------------------------------------
local function restricted()
  return {
    h100 = part("h100", { allow_accounts = "physics,chem" }),
    a100 = part("a100", { deny_accounts = "bio" }),
    v100 = part("v100", { allow_qos = "high" }),
    t4 = part("t4", { deny_qos = "low" }),
    gpu = part("gpu", { state_up = 2 }),  -- DRAIN: no new jobs
    cpu = part("cpu", { allow_accounts = "ALL", max_time = 60 }),
  }
end
test("admits: accounts, QOS, state, time", function()
  local P = restricted()
  eq(M.admits(P.h100, { account = "physics" }), true)
  eq(M.admits(P.h100, { account = "bio" }), false)
  eq(M.admits(P.h100, {}), false) -- cannot be shown to be allowed
  eq(M.admits(P.h100, { default_account = "chem" }), true)
  eq(M.admits(P.a100, { account = "bio" }), false)
  eq(M.admits(P.a100, {}), true)
  eq(M.admits(P.v100, { qos = "high" }), true)
  eq(M.admits(P.v100, { qos = "normal" }), false)
  eq(M.admits(P.t4, { qos = "low" }), false)
  eq(M.admits(P.t4, { default_qos = "normal" }), true)
  eq(M.admits(P.gpu, {}), false)
  eq(M.admits(part("down", { state_up = 1 }), {}), true) -- DOWN still queues jobs
  eq(M.admits(P.cpu, { time_limit = 60 }), true)
  eq(M.admits(P.cpu, { time_limit = 61 }), false)
  eq(M.admits(P.cpu, { time_limit = 4294967294 }), true) -- NO_VAL: no limit asked
  eq(M.admits(part("g", { allow_groups = "wheel" }), {}), false)
  eq(M.admits(part("g", { allow_groups = "ALL" }), {}), true)
end)
test("fallback respects access rules", function()
  os.remove(routing)
  local job = { partition = "auto", account = "bio", qos = "low", tres_per_job = "gres:gpu:1" }
  M.route(job, NOW, restricted())
  eq(job.partition, "cpu")
end)
test("routes respect access rules", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\nroute gpu h100,a100,gpu\n")
  local job = { partition = "auto", account = "bio", tres_per_job = "gres:gpu:1" }
  M.route(job, NOW, restricted())
  -- nothing usable in the route; GPU layout unknown: every partition that admits bio
  eq(job.partition, "cpu,t4")
end)
test("routes pick the first admitted partition", function()
  write_routes("format 1\ngenerated_at " .. NOW .. "\nroute gpu h100,a100,gpu\n")
  local job = { partition = "auto", account = "ops", tres_per_job = "gres:gpu:1" }
  M.route(job, NOW, restricted())
  eq(job.partition, "a100")
  eq(job.admin_comment, "slurmopt:allowed=a100")
end)
test("part_list shapes: keyed by name, odd records ignored", function()
  local P = M.partitions({ a = { name = "a" }, [1] = { name = "b" }, c = 5 })
  assert(P.a and P.b, "a and b")
end)
test("escape", function()
  eq(M.escape("a\nb\tc"), "a\\x0ab\\x09c")
  eq(#M.escape(string.rep("y", 1000), 10), 13)
  eq(M.escape(nil), "nil")
  eq(M.escape("100%"), "100%")
end)
test("every fault: accepted exactly once with SUCCESS, log printable", function()
  local faults = {
    function() os.remove(routing) end,
    function() write_routes("\255\0\1garbage\n") end,
    function() write_routes("format 1\ngenerated_at " .. os.time() .. "\nroute cpu nosuch\n") end,
    function() write_routes("format 1\ngenerated_at " .. os.time() .. "\nroute cpu auto\n") end,
    function() write_routes("format 1\ngenerated_at " .. (os.time() + 9999) .. "\nroute cpu cpu\n") end,
    function() write_routes(string.rep("z", SITE.max_bytes + 1)) end,
  }
  for i, fault in ipairs(faults) do
    fault()
    logs = {}
    local job = { name = "f" .. i, partition = "auto" }
    eq(slurm_job_submit(job, PARTS, 1000), slurm.SUCCESS, "fault " .. i)
    eq(#logs, 1, "one log line for fault " .. i)
    assert(printable(logs[1][2]), logs[1][2])
    assert(not tostring(job.partition):find("auto"), "fault " .. i .. ": " .. job.partition)
  end
end)
test("modify passes through", function()
  local job = { partition = "x" }
  eq(slurm_job_modify(job, {}, {}, 0), slurm.SUCCESS)
  eq(job.partition, "x")
end)

os.remove(routing)
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
