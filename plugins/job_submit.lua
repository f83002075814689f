--[[
slurmopt job_submit.lua: route plain sbatch jobs to the partition the
slurmopt controller advises.

Install: copy to the directory of slurm.conf as job_submit.lua and set
`JobSubmitPlugins=lua` (see etc/slurm/job_submit.conf.snippet). Works with
Slurm 22.05 through 26.05 (Lua 5.1 to 5.4).

What it does, for jobs that opt in (see SITE below):
  * reads the routing file the controller writes every cycle
    (`slurmopt controller`, key `controller.routing_file`);
  * keeps, of the advised partitions for the job's class (gpu:<type>, gpu,
    cpu), those that exist in Slurm's own partition list, are up and admit
    the job's account and QOS; sets the first (or the ordered list when
    SITE.set_list is true);
  * records the set of partitions the job may be moved within in
    admin_comment ("slurmopt:allowed=a,b,c"), where the controller reads it.

It fails open by construction: when the advice is unusable for any reason
(file missing, unreadable, larger than SITE.max_bytes, not a routing file,
stale, from the future, routes to no usable partition, or any Lua error) the
job gets the partitions it could have used without slurmopt: Slurm's default
partition when it named none (route_without_partition); the rest of its own
list when it named real partitions besides the pseudo one; else the site
fallback list for its class (SITE.fallback), else every partition that is up,
admits its account/QOS/time limit and has the GPUs it asks for (GPU types of a
partition: SITE.partition_gpus, else the `gpus` records of the last routing
file that could be read). Nothing of slurmopt ever rejects a job.
Every logged string is escaped (printable ASCII only) and truncated.
--]]

-- Site table: edit here. ----------------------------------------------------
local SITE = {
  -- Routing file written by the controller. SLURMOPT_ROUTING_FILE in
  -- slurmctld's environment overrides it.
  routing_file = "/var/lib/slurmopt/routing.txt",
  -- Ignore the routing file when its generated_at is older than this (s).
  max_age = 900,
  -- ... or more than this far in the future (s): a wrong clock or a forged file.
  max_future = 60,
  -- Bounded reads: a larger file, or one with more lines, is not advice.
  max_bytes = 65536,
  max_lines = 2000,
  -- Jobs that asked for one of these partitions opt in ("-p auto"). These are
  -- pseudo partitions that need not exist in slurm.conf; they are always
  -- removed from the job's list.
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
  -- Fallback when the advice is unusable, per class ("cpu", "gpu",
  -- "gpu:<type>"): comma-separated partitions, e.g. { gpu = "gpu,a100" }.
  -- Partitions that do not exist or do not admit the job are dropped.
  fallback = {},
  -- GPU types of each partition, e.g. { h100 = "h100", gpu = "a100,h100",
  -- cpu = "" }. Empty: learned from the routing file's `gpus` records.
  partition_gpus = {},
}
-------------------------------------------------------------------------------

local M = {}
M.SITE = SITE
-- partition -> { [type] = true } (an empty table: no GPUs), from the last
-- routing file whose header could be read (kept while slurmctld runs).
M.learned_gpus = nil

-- A string safe for slurmctld.log: printable ASCII, others as \xNN, at most n chars.
function M.escape(value, n)
  local s = tostring(value)
  n = n or 200
  if #s > n * 4 then
    s = s:sub(1, n * 4)
  end
  s = s:gsub("[^\32-\126]", function(c) return string.format("\\x%02x", c:byte()) end)
  if #s > n then
    s = s:sub(1, n) .. "..."
  end
  return s
end

local function log(msg)
  slurm.log_info("%s", "slurmopt: " .. msg)
end

local function split(list)
  local out = {}
  if type(list) ~= "string" then
    return out
  end
  for item in list:gmatch("[^,]+") do
    table.insert(out, item)
  end
  return out
end

local function set_of(list)
  local out = {}
  for _, item in ipairs(split(list)) do
    out[item] = true
  end
  return out
end

-- Read the routing file, bounded. Returns (routes, nil, gpus) or (nil, reason, gpus);
-- gpus (partition -> set of GPU types) is returned whenever the header was readable.
-- Format (one record per line, '#' comments):
--   format 1
--   generated_at <epoch seconds>
--   route <class> <partition>[,<partition>...]
--   gpus <partition> <type>[,<type>...] | -     (optional)
function M.read_routes(path, now)
  local fh, err = io.open(path, "rb")
  if not fh then
    return nil, "cannot open " .. path .. ": " .. tostring(err)
  end
  local size = fh:seek("end")
  if size == nil or size > SITE.max_bytes then
    fh:close()
    return nil, string.format("routing file is larger than %d bytes", SITE.max_bytes)
  end
  fh:seek("set", 0)
  local text = fh:read(SITE.max_bytes + 1) or ""
  fh:close()
  if #text > SITE.max_bytes then
    return nil, string.format("routing file is larger than %d bytes", SITE.max_bytes)
  end
  local routes, gpus, generated, format = {}, {}, nil, nil
  local nlines, bad = 0, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    nlines = nlines + 1
    if nlines > SITE.max_lines then
      return nil, string.format("routing file has more than %d lines", SITE.max_lines)
    end
    local key, rest = line:match("^%s*(%S+)%s*(.-)%s*$")
    if key == nil or key:sub(1, 1) == "#" then
      -- blank or comment
    elseif key == "format" then
      format = tonumber(rest)
    elseif key == "generated_at" then
      generated = tonumber(rest)
    elseif key == "route" then
      local class, parts = rest:match("^([%w:_%.%-]+)%s+([%w_%.%-,]+)$")
      if class == nil then
        bad = bad or ("malformed route line: " .. line)
      else
        routes[class] = parts
      end
    elseif key == "gpus" then
      local part, types = rest:match("^([%w_%.%-]+)%s+([%w_%.%-,]+)$")
      if part == nil then
        bad = bad or ("malformed gpus line: " .. line)
      else
        gpus[part] = types == "-" and {} or set_of(types)
      end
    else
      bad = bad or ("unknown record: " .. key)
    end
  end
  if format ~= 1 then
    return nil, "unsupported routing file format " .. tostring(format)
  end
  if bad then
    return nil, bad
  end
  if generated == nil then
    return nil, "routing file has no generated_at", gpus
  end
  if now - generated > SITE.max_age then
    return nil, string.format("routing file is stale (%d s old)", now - generated), gpus
  end
  if generated - now > SITE.max_future then
    return nil, string.format("routing file is from the future (%d s ahead)", generated - now),
      gpus
  end
  return routes, nil, gpus
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

-- The job's own list without the opt-in pseudo partitions.
function M.own_partitions(job_desc)
  local keep = {}
  for _, p in ipairs(split(job_desc.partition)) do
    if not SITE.opt_in_partitions[p] then
      table.insert(keep, p)
    end
  end
  return keep
end

-- Remove the opt-in pseudo partitions from the job's list ("" when none is left:
-- Slurm then applies its default partition; Slurm's Lua setter takes no nil).
-- Returns true when it changed the job.
function M.strip_pseudo(job_desc)
  local part = job_desc.partition
  if type(part) ~= "string" or part == "" then
    return false
  end
  local new = table.concat(M.own_partitions(job_desc), ",")
  if new == part then
    return false
  end
  job_desc.partition = new
  return true
end

-- Slurm's partition list as name -> record (part_list is keyed by name; read p.name anyway).
function M.partitions(part_list)
  local out = {}
  if type(part_list) ~= "table" then
    return out
  end
  for key, p in pairs(part_list) do
    local ok, name = pcall(function() return p.name end)
    if not ok or type(name) ~= "string" then
      name = key
    end
    if type(name) == "string" and name ~= "" then
      out[name] = p
    end
  end
  return out
end

local function field(p, name)
  local ok, v = pcall(function() return p[name] end)
  if ok then
    return v
  end
  return nil
end

-- An allow/deny list check: nil/"" = no rule, "ALL" admits everyone.
local function listed(list, value)
  if type(list) ~= "string" or list == "" then
    return nil
  end
  local set = set_of(list)
  if set.ALL or set.all then
    return true
  end
  return value ~= nil and set[value] == true
end

-- Whether partition record p admits the job (state, account, QOS, time limit).
-- Returns (true) or (false, why). Unknown facts are judged conservatively:
-- an AllowAccounts/AllowQos/AllowGroups rule the job cannot be shown to meet
-- excludes the partition (the job then goes elsewhere, never rejected).
function M.admits(p, job_desc)
  local state = field(p, "state_up")
  if type(state) == "number" and state % 2 ~= 1 then
    return false, "not accepting jobs"
  end
  local account = job_desc.account
  if account == nil or account == "" then
    account = job_desc.default_account
  end
  local qos = job_desc.qos
  if qos == nil or qos == "" then
    qos = job_desc.default_qos
  end
  if listed(field(p, "allow_accounts"), account) == false then
    return false, "account not allowed"
  end
  if listed(field(p, "deny_accounts"), account) == true then
    return false, "account denied"
  end
  if listed(field(p, "allow_qos"), qos) == false then
    return false, "qos not allowed"
  end
  if listed(field(p, "deny_qos"), qos) == true then
    return false, "qos denied"
  end
  local groups = field(p, "allow_groups")
  if type(groups) == "string" and groups ~= "" and not set_of(groups).ALL then
    return false, "AllowGroups"
  end
  local limit, max_time = job_desc.time_limit, field(p, "max_time")
  if type(limit) == "number" and type(max_time) == "number" and limit > 0 and
     limit < 4294967294 and max_time < 4294967294 and limit > max_time then
    return false, "time limit above MaxTime"
  end
  return true
end

-- Whether a partition has the GPUs of `class`: true, false, or nil (unknown).
function M.has_gpus(part, class, gpus)
  local types = nil
  local site = SITE.partition_gpus[part]
  if site ~= nil then
    types = set_of(site)
  elseif gpus ~= nil then
    types = gpus[part]
  end
  if types == nil then
    return nil
  end
  if class == "cpu" then
    return next(types) == nil
  end
  if class == "gpu" then
    return next(types) ~= nil
  end
  return types[class:sub(5)] == true
end

-- The advised partitions of a route that exist and admit the job, in order.
function M.usable(list, parts, job_desc)
  local out = {}
  for _, name in ipairs(split(list)) do
    local p = parts[name]
    if p ~= nil and not SITE.opt_in_partitions[name] and M.admits(p, job_desc) then
      table.insert(out, name)
    end
  end
  return out
end

-- The partitions the job could have used without slurmopt (see the header).
-- Returns (list, how); an empty list means Slurm's default partition.
function M.fallback_set(job_desc, parts, class, gpus)
  local asked = job_desc.partition
  if type(asked) ~= "string" or asked == "" then
    return {}, "Slurm's default partition (the job named none)"
  end
  local own = M.own_partitions(job_desc)
  if #own > 0 then
    return own, "the rest of the job's own list"
  end
  local site = SITE.fallback[class]
  if site ~= nil then
    local ok = M.usable(site, parts, job_desc)
    if #ok > 0 then
      return ok, "the site fallback list"
    end
  end
  local names = {}
  for name in pairs(parts) do
    table.insert(names, name)
  end
  table.sort(names)
  local known, out = false, {}
  for _, name in ipairs(names) do
    if not SITE.opt_in_partitions[name] and M.admits(parts[name], job_desc) then
      local fits = M.has_gpus(name, class, gpus)
      known = known or fits ~= nil
      if fits ~= false then
        table.insert(out, name)
      end
    end
  end
  if class == "cpu" and not known then
    return {}, "Slurm's default partition (GPU layout unknown)"
  end
  return out, "every partition that admits the job"
end

local function set_allowed(job_desc, list)
  if not SITE.record_allowed or #list == 0 then
    return nil
  end
  local new = SITE.allowed_prefix .. table.concat(list, ",")
  local prev = job_desc.admin_comment
  if type(prev) == "string" and prev ~= "" then
    new = prev .. " " .. new
  end
  return new
end

-- Changes job_desc in place when it opts in; returns what it did (not yet escaped).
-- Everything is computed first, then the job is changed: never half-applied.
function M.route(job_desc, now, part_list)
  if not M.opted_in(job_desc) then
    return "not opted in"
  end
  local parts = M.partitions(part_list)
  local class = M.job_class(job_desc)
  local path = os.getenv("SLURMOPT_ROUTING_FILE") or SITE.routing_file
  local routes, err, gpus = M.read_routes(path, now)
  if gpus ~= nil and next(gpus) ~= nil then
    M.learned_gpus = gpus
  end
  local chosen, why = nil, nil
  if routes ~= nil then
    local list = routes[class]
    if list == nil then
      err = "no route for class " .. class
    else
      chosen = M.usable(list, parts, job_desc)
      if #chosen == 0 then
        err = "no usable partition in route " .. class .. " " .. list
        chosen = nil
      end
    end
  end
  local how
  if chosen == nil then
    chosen, how = M.fallback_set(job_desc, parts, class, M.learned_gpus)
    why = "advice unusable (" .. tostring(err) .. "); fallback: " .. how
  end
  local new_part
  if why == nil then
    new_part = SITE.set_list and table.concat(chosen, ",") or chosen[1]
  else
    new_part = table.concat(chosen, ",")
  end
  local new_comment = set_allowed(job_desc, chosen)
  job_desc.partition = new_part
  if new_comment then
    job_desc.admin_comment = new_comment
  end
  local where = new_part ~= "" and new_part or "(default partition)"
  if why then
    return why .. ": " .. where
  end
  return "routed " .. class .. " to " .. where
end

function slurm_job_submit(job_desc, part_list, submit_uid)
  local ok, result = pcall(M.route, job_desc, os.time(), part_list)
  if ok then
    local name = select(2, pcall(function() return job_desc.name end))
    log("job " .. M.escape(name, 64) .. ": " .. M.escape(result, 400))
  else
    -- Fail open: never reject a job because of slurmopt.
    pcall(M.strip_pseudo, job_desc)
    slurm.log_error("%s", "slurmopt: routing failed, job accepted as Slurm places it: " ..
      M.escape(result, 400))
  end
  return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
  return slurm.SUCCESS
end

-- Exposed for the unit tests (plugins/tests/test_job_submit.lua).
slurmopt_job_submit = M
