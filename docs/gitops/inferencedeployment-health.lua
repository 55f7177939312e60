-- Argo CD health check for gridshift.dev/InferenceDeployment, from the operator's status conditions.
-- Install: argocd-cm key resource.customizations.health.gridshift.dev_InferenceDeployment
-- (argocd-cm-health.yaml embeds this file; tests/chart/test_argocd_health.py runs it on fixtures).
-- Written for Lua 5.1 (gopher-lua, Argo CD's interpreter): no goto, no integer division.
--
--   no status yet, or status older than spec    -> Progressing (the operator has not acted yet)
--   Migrating=True                              -> Progressing (make-before-break move in flight)
--   Ready=False with a failure reason           -> Degraded
--   Ready=False otherwise, Ready=Unknown/absent -> Progressing (replicas starting)
--   Ready=True and SLOAtRisk=True               -> Degraded (serving, but latency objective at risk)
--   Ready=True                                  -> Healthy; Advisory, MetricsStale and
--                                                  PriceFeedStale are named in the message
local hs = {}

local function find_condition(conditions, wanted)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == wanted then
      return condition
    end
  end
  return nil
end

local function is_true(condition)
  return condition ~= nil and condition.status == "True"
end

local function describe(condition)
  local text = condition.type
  if condition.reason ~= nil and condition.reason ~= "" then
    text = text .. " (" .. condition.reason .. ")"
  end
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

-- Reasons that mean "will not get better by waiting"; anything else is still progressing.
local failure_words = {"Fail", "Error", "Invalid", "Forbidden", "Unschedulable", "Insufficient", "NoCapacity",
                       "Unreachable", "NotFound", "Infeasible"}

local function looks_failed(reason)
  if reason == nil then
    return false
  end
  for _, word in ipairs(failure_words) do
    if string.find(reason, word, 1, true) ~= nil then
      return true
    end
  end
  return false
end

local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the gridshift operator to report status"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on spec generation " .. tostring(generation)
  return hs
end

local conditions = status.conditions
local ready = find_condition(conditions, "Ready")
local migrating = find_condition(conditions, "Migrating")
local slo_at_risk = find_condition(conditions, "SLOAtRisk")

if is_true(migrating) then
  hs.status = "Progressing"
  hs.message = describe(migrating)
  return hs
end

if ready == nil or ready.status ~= "True" then
  if ready ~= nil and ready.status == "False" and looks_failed(ready.reason) then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  if ready ~= nil then
    hs.message = describe(ready)
  else
    hs.message = "Waiting for the Ready condition"
  end
  return hs
end

if is_true(slo_at_risk) then
  hs.status = "Degraded"
  hs.message = describe(slo_at_risk)
  return hs
end

local notes = {}
for _, wanted in ipairs({"Advisory", "MetricsStale", "PriceFeedStale"}) do
  local condition = find_condition(conditions, wanted)
  if is_true(condition) then
    table.insert(notes, describe(condition))
  end
end
hs.status = "Healthy"
if #notes > 0 then
  hs.message = table.concat(notes, "; ")
else
  hs.message = describe(ready)
end
return hs
