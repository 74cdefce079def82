-- Argo CD health of a ragops.io/RagBackup (one backup of a RagSystem, on demand or from
-- its schedule): Pending and Running are Progressing, Completed is Healthy, Failed is
-- Degraded, a completed backup whose data is gone (Available=False) is Missing. Stale
-- status is Progressing. Written for argocd-cm's default sandbox: no string or math library.

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function join(prefix, text)
  if text == nil or text == "" then
    return prefix
  end
  return prefix .. ": " .. text
end

local function detail(status, kind)
  if status.message ~= nil and status.message ~= "" then
    return status.message
  end
  local c = condition(status, kind)
  if c ~= nil then
    return c.message
  end
  return nil
end

local function health()
  local meta = obj.metadata or {}
  local status = obj.status
  if status == nil or status.phase == nil then
    return "Progressing", "Waiting for the ragops operator to start the backup"
  end
  local generation = meta.generation
  local observed = status.observedGeneration
  if generation ~= nil and observed ~= nil and observed < generation then
    return "Progressing", "Waiting for the ragops operator to observe generation " .. tostring(generation)
  end
  local phase = status.phase
  if phase == "Pending" then
    return "Progressing", join("Pending", detail(status, "Complete"))
  end
  if phase == "Running" then
    local text = "Running"
    if status.startedAt ~= nil then
      text = text .. " since " .. status.startedAt
    end
    return "Progressing", text
  end
  if phase == "Failed" then
    return "Degraded", join("Failed", detail(status, "Complete"))
  end
  if phase == "Completed" then
    local available = condition(status, "Available")
    if available ~= nil and available.status == "False" then
      return "Missing", join("The backup's data is gone", available.message)
    end
    local text = "Completed"
    if status.completedAt ~= nil then
      text = text .. " at " .. status.completedAt
    end
    if type(status.size) == "number" then
      text = text .. " (" .. tostring(status.size) .. " bytes)"
    elseif status.size ~= nil then
      text = text .. " (" .. status.size .. ")"
    end
    return "Healthy", text
  end
  return "Unknown", "Unknown backup phase " .. tostring(phase)
end

local hs = {}
hs.status, hs.message = health()
return hs
