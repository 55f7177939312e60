-- Argo CD health of a gridshift.dev InferenceDeployment, read from the conditions the operator writes
-- (docs/status.md): Stalled=True is Degraded; Advisory and Frozen modes are Suspended; Reconciling=True
-- (a move in flight, replicas starting) is Progressing; Ready=True is Healthy.
local hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function says(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the gridshift operator to report status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the gridshift operator to act on generation " .. generation
  return hs
end
local ready = condition("Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = says(stalled)
  return hs
end
local mode = obj.status.mode
if mode == "Advisory" or mode == "Frozen" then
  hs.status = "Suspended"
  hs.message = says(ready)
  return hs
end
local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = says(reconciling)
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
else
  hs.status = "Progressing"
end
hs.message = says(ready)
return hs
