-- Argo CD health of a gridshift.dev RegionalCluster, read from the conditions the operator writes
-- (docs/status.md): Ready=True is Healthy; Ready=False (unreachable, forbidden, a bad kubeconfig, stale
-- prices) is Degraded; so is a Ready cluster whose metrics cannot be told from another's
-- (MetricsAmbiguous=True: its deployments' demand is not read, so they are never scaled down until the
-- user sets operator.metricsClusterLabel or a prometheusUrl of the cluster's own).
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

local ready = condition("Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the gridshift operator to report status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the gridshift operator to act on generation " .. generation
  return hs
end
local said = ready.reason
if ready.message ~= nil and ready.message ~= "" then
  said = said .. ": " .. ready.message
end
local ambiguous = condition("MetricsAmbiguous")
if ready.status == "True" and ambiguous ~= nil and ambiguous.status == "True" then
  hs.status = "Degraded"
  hs.message = "MetricsAmbiguous: " .. (ambiguous.message or "")
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = said
return hs
