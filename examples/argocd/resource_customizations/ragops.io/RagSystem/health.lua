-- Argo CD health of a ragops.io/RagSystem, from the status the ragops operator writes.
-- Stale status (observedGeneration behind metadata.generation) is Progressing; a canary
-- rolled back or a Degraded condition is Degraded; a paused canary is Suspended; Ready is
-- Healthy. Written for argocd-cm's default sandbox: no string or math library, so only
-- tables, comparisons, tostring and concatenation are used.

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

local function canary(rollout)
  local text = "Canary"
  if rollout.canaryVersion ~= nil then
    text = text .. " " .. rollout.canaryVersion
  end
  return text
end

local function at_weight(rollout)
  local text = ""
  if rollout.weight ~= nil then
    text = " at weight " .. tostring(rollout.weight) .. "%"
  end
  if rollout.step ~= nil then
    text = text .. " (step " .. tostring(rollout.step) .. ")"
  end
  return text
end

local function stale(generation, observed)
  return generation ~= nil and (observed == nil or observed < generation)
end

local function health()
  local meta = obj.metadata or {}
  local status = obj.status
  local generation = meta.generation
  if meta.deletionTimestamp ~= nil then
    return "Progressing", "Deleting: the operator is removing the system's children"
  end
  if status == nil or status.phase == nil then
    return "Progressing", "Waiting for the ragops operator to reconcile the RagSystem"
  end
  if stale(generation, status.observedGeneration) then
    local seen = "the status has no observedGeneration"
    if status.observedGeneration ~= nil then
      seen = "the status is from generation " .. tostring(status.observedGeneration)
    end
    return "Progressing", "Waiting for the ragops operator to observe generation "
      .. tostring(generation) .. " (" .. seen .. ")"
  end

  local rollout = status.rollout or {}
  if rollout.phase == "RolledBack" then
    local text = canary(rollout) .. " rolled back"
    if rollout.message ~= nil and rollout.message ~= "" then
      text = text .. ": " .. rollout.message
    end
    if rollout.stableVersion ~= nil then
      text = text .. "; stable " .. rollout.stableVersion .. " keeps serving"
    end
    return "Degraded", text
  end

  local degraded = condition(status, "Degraded")
  if status.phase == "Degraded" or (degraded ~= nil and degraded.status == "True") then
    if degraded ~= nil and degraded.status == "True" then
      return "Degraded", join(degraded.reason or "Degraded", degraded.message)
    end
    return "Degraded", "Phase Degraded"
  end

  if rollout.phase == "Paused" then
    return "Suspended", join(canary(rollout) .. " paused" .. at_weight(rollout), rollout.message)
  end
  if rollout.phase == "Progressing" or rollout.phase == "Promoting" then
    local verb = " in analysis"
    if rollout.phase == "Promoting" then
      verb = " being promoted"
    end
    return "Progressing", join(canary(rollout) .. verb .. at_weight(rollout), rollout.message)
  end

  local ready = condition(status, "Ready")
  if status.phase == "Ready" and ready ~= nil and ready.status == "True" then
    if stale(generation, ready.observedGeneration) then
      return "Progressing", "Waiting for the Ready condition of generation " .. tostring(generation)
    end
    local text = "All components are ready"
    if status.readySummary ~= nil and status.readySummary ~= "" then
      text = text .. " (" .. status.readySummary .. ")"
    end
    if status.version ~= nil and status.version ~= "" then
      text = text .. ", version " .. status.version
    end
    return "Healthy", text
  end

  local progressing = condition(status, "Progressing")
  if progressing ~= nil and progressing.status == "True" then
    return "Progressing", join("Phase " .. status.phase, progressing.message)
  end
  if ready ~= nil and ready.message ~= nil then
    return "Progressing", join("Phase " .. status.phase, ready.message)
  end
  return "Progressing", "Phase " .. status.phase
end

local hs = {}
hs.status, hs.message = health()
return hs
