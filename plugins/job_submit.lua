--[[
slurmopt job_submit.lua: route plain sbatch jobs to the partition the
slurmopt controller advises.

Install: copy to the directory of slurm.conf as job_submit.lua and set
`JobSubmitPlugins=lua` (see etc/slurm/job_submit.conf.snippet). Works with
Slurm 22.05 through 26.05.

What it does, for jobs that opt in (see SITE below):
  * reads the routing file the controller writes every cycle
    (`slurmopt controller`, key `controller.routing_file`);
  * sets the job's partition to the advised partition for the job's class
    (gpu:<type>, gpu, cpu), or the ordered list when SITE.set_list is true;
  * records the set of partitions the job may be moved within in
    admin_comment ("slurmopt:allowed=a,b,c"), where the controller reads it.

It fails open: a missing, unreadable, malformed or stale routing file, or any
Lua error, leaves the job exactly as submitted and accepted.
--]]

-- Site table: edit here. ----------------------------------------------------
local SITE = {
  -- Routing file written by the controller. SLURMOPT_ROUTING_FILE in
  -- slurmctld's environment overrides it.
  routing_file = "/var/lib/slurmopt/routing.txt",
  -- Ignore the routing file when its generated_at is older than this (s).
  max_age = 900,
  -- Jobs that asked for one of these partitions opt in ("-p auto"). These are
  -- pseudo partitions that need not exist in slurm.conf: when no advice can
  -- be used (file missing, stale, broken, or a Lua error) they are removed
  -- from the job's list, so the job still goes where Slurm would put it
  -- (the rest of its list, or the default partition) instead of failing.
  opt_in_partitions = { auto = true },
  -- Jobs that asked for no partition at all opt in.
  route_without_partition = false,
  -- Jobs whose --comment contains this tag opt in.
  comment_tag = "slurmopt:auto",
  -- true: set the ordered list of advised partitions; false: only the first.
  set_list = false,
  -- Record the allowed set in admin_comment for the controller.
  record_allowed = true,
  allowed_prefix = "slurmopt:allowed=",
}
-------------------------------------------------------------------------------

local M = {}
M.SITE = SITE

local function log(fmt, ...)
  slurm.log_info("slurmopt: " .. fmt, ...)
end

-- Read the routing file. Returns (routes, nil) or (nil, reason).
-- Format (one record per line, '#' comments):
--   format 1
--   generated_at <epoch seconds>
--   route <class> <partition>[,<partition>...]
function M.read_routes(path, now)
  local fh, err = io.open(path, "r")
  if not fh then
    return nil, "cannot open " .. path .. ": " .. tostring(err)
  end
  local routes, generated, format = {}, nil, nil
  for line in fh:lines() do
    local key, rest = line:match("^%s*(%S+)%s*(.-)%s*$")
    if key == nil or key:sub(1, 1) == "#" then
      -- blank or comment
    elseif key == "format" then
      format = tonumber(rest)
    elseif key == "generated_at" then
      generated = tonumber(rest)
    elseif key == "route" then
      local class, parts = rest:match("^(%S+)%s+(%S+)$")
      if class == nil then
        fh:close()
        return nil, "malformed route line: " .. line
      end
      routes[class] = parts
    else
      fh:close()
      return nil, "unknown record: " .. key
    end
  end
  fh:close()
  if format ~= 1 then
    return nil, "unsupported routing file format " .. tostring(format)
  end
  if generated == nil then
    return nil, "routing file has no generated_at"
  end
  if now - generated > SITE.max_age then
    return nil, string.format("routing file is stale (%d s old)", now - generated)
  end
  return routes, nil
end

-- The job's GPU request, from whichever field Slurm filled
-- ("gres:gpu:a100:2" on 22.05, "gres/gpu:a100:2" later, or "gpu:a100:2").
function M.gpu_request(job_desc)
  for _, field in ipairs({ "tres_per_node", "tres_per_job", "tres_per_task",
                           "tres_per_socket", "gres" }) do
    local value = job_desc[field]
    if type(value) == "string" and value ~= "" then
      for item in value:gmatch("[^,]+") do
        local spec = item:gsub("^gres[:/]", "")
        if spec:match("^gpu") then
          local gtype = spec:match("^gpu:([%a_][%w_%-%.]*):%d+") or
                        spec:match("^gpu:([%a_][%w_%-%.]*)$")
          return true, gtype
        end
      end
    end
  end
  return false, nil
end

function M.job_class(job_desc)
  local wants_gpu, gtype = M.gpu_request(job_desc)
  if not wants_gpu then
    return "cpu"
  end
  if gtype then
    return "gpu:" .. gtype
  end
  return "gpu"
end

function M.opted_in(job_desc)
  local part = job_desc.partition
  if part == nil or part == "" then
    return SITE.route_without_partition
  end
  for p in part:gmatch("[^,]+") do
    if SITE.opt_in_partitions[p] then
      return true
    end
  end
  local comment = job_desc.comment
  if SITE.comment_tag ~= "" and type(comment) == "string" and
     comment:find(SITE.comment_tag, 1, true) then
    return true
  end
  return false
end

-- Remove the opt-in pseudo partitions from the job's list ("" when none is left:
-- Slurm then applies its default partition; Slurm's Lua setter takes no nil).
-- Returns true when it changed the job.
function M.strip_pseudo(job_desc)
  local part = job_desc.partition
  if type(part) ~= "string" or part == "" then
    return false
  end
  local keep = {}
  for p in part:gmatch("[^,]+") do
    if not SITE.opt_in_partitions[p] then
      table.insert(keep, p)
    end
  end
  local new = table.concat(keep, ",")
  if new == part then
    return false
  end
  job_desc.partition = new
  return true
end

local function fallback(job_desc, why)
  if M.strip_pseudo(job_desc) then
    return why .. "; pseudo partition removed, Slurm places the job"
  end
  return why
end

-- Changes job_desc in place when it opts in and a route exists; returns what it did.
function M.route(job_desc, now)
  if not M.opted_in(job_desc) then
    return "not opted in"
  end
  local path = os.getenv("SLURMOPT_ROUTING_FILE") or SITE.routing_file
  local routes, err = M.read_routes(path, now)
  if routes == nil then
    return fallback(job_desc, "unchanged: " .. err)
  end
  local class = M.job_class(job_desc)
  local parts = routes[class]
  if parts == nil then
    return fallback(job_desc, "unchanged: no route for class " .. class)
  end
  -- Compute everything first, then change the job: never half-applied.
  local first = parts:match("^[^,]+")
  local new_part = SITE.set_list and parts or first
  local new_comment = nil
  if SITE.record_allowed then
    local prev = job_desc.admin_comment
    new_comment = SITE.allowed_prefix .. parts
    if type(prev) == "string" and prev ~= "" then
      new_comment = prev .. " " .. new_comment
    end
  end
  job_desc.partition = new_part
  if new_comment then
    job_desc.admin_comment = new_comment
  end
  return "routed " .. class .. " to " .. job_desc.partition
end

function slurm_job_submit(job_desc, part_list, submit_uid)
  local ok, result = pcall(M.route, job_desc, os.time())
  if ok then
    log("job %s: %s", tostring(job_desc.name), result)
  else
    -- Fail open: never reject a job because of slurmopt.
    slurm.log_error("slurmopt: routing failed, job accepted unchanged: %s", tostring(result))
    pcall(M.strip_pseudo, job_desc)
  end
  return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
  return slurm.SUCCESS
end

-- Exposed for the unit tests (plugins/tests/test_job_submit.lua).
slurmopt_job_submit = M
