{{/* Names and labels shared by every template. */}}

{{- define "gridshift.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gridshift.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gridshift.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gridshift.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gridshift.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- /*
An object's labels as one map (keys sorted): the chart's selector labels, over the object's own labels
(the list after the root context, first wins), over commonLabels, over the chart's other labels. One map,
not lines appended: found in review, commonLabels setting app.kubernetes.io/part-of, or the same key in
commonLabels and serviceAccount.labels, wrote the key twice in one mapping, which strict YAML readers refuse.
Use: `{{- include "gridshift.labels" (list . .Values.x.labels) | nindent 4 }}`; `(list .)` for none.
*/ -}}
{{- define "gridshift.labels" -}}
{{- $root := first . }}
{{- $chart := dict "helm.sh/chart" (include "gridshift.chart" $root) "app.kubernetes.io/version" (toString $root.Chart.AppVersion) }}
{{- $chart = merge $chart (dict "app.kubernetes.io/managed-by" $root.Release.Service "app.kubernetes.io/part-of" "gridshift") }}
{{- $layers := list $chart (include "gridshift.commonLabels" $root | fromYaml) }}
{{- range $own := reverse (rest .) }}
{{- $layers = append $layers $own }}
{{- end }}
{{- include "gridshift.layered" (append $layers (include "gridshift.selectorLabels" $root | fromYaml)) }}
{{- end }}

{{- /* The pods' labels as one map: the selector labels over podLabels over commonLabels. */ -}}
{{- define "gridshift.podLabels" -}}
{{- include "gridshift.layered" (list (include "gridshift.commonLabels" . | fromYaml) .Values.podLabels (include "gridshift.selectorLabels" . | fromYaml)) }}
{{- end }}

{{- /* commonLabels, over global.commonLabels (an umbrella chart's): on every object and on the pods. */ -}}
{{- define "gridshift.commonLabels" -}}
{{- include "gridshift.layered" (list (.Values.global | default dict).commonLabels .Values.commonLabels) }}
{{- end }}

{{- /*
Maps (a list, lowest precedence first) as one, in YAML; nothing when all are empty. Each key is set from the
lowest layer up, never `merge`d: merge takes an empty value ("") for none and fills it from the layer below
(found in review: podLabels.e="" gave way to commonLabels' e).
*/ -}}
{{- define "gridshift.layered" -}}
{{- $merged := dict }}
{{- range $layer := . }}
{{- range $key, $value := ($layer | default dict) }}
{{- $_ := set $merged $key $value }}
{{- end }}
{{- end }}
{{- with $merged }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{- /*
An `annotations:` block under an object's metadata (a newline first, indented by 2): its own annotations
(the list after the root context, first wins) over commonAnnotations; nothing when both are empty.
Layered as the labels are, not `merge`d (found in review: deploymentAnnotations.team="" gave way to
commonAnnotations' team).
Use on its own line after the labels: `  {{- include "gridshift.annotations" (list $ .Values.x.annotations) }}`
*/ -}}
{{- define "gridshift.annotations" -}}
{{- $root := first . }}
{{- $layers := list ($root.Values.commonAnnotations | default dict) }}
{{- range $own := reverse (rest .) }}
{{- $layers = append $layers $own }}
{{- end }}
{{- with include "gridshift.layered" $layers }}
{{- printf "\n  annotations:\n%s" (. | indent 4) }}
{{- end }}
{{- end }}

{{- /*
operator.* as the operator will read them, as JSON: each value over the operator's default
(gridshift.operatorDefaults, generated from OperatorSettings), which a null value (no env var) leaves in
force. The checks of the settings' cross-field rules read these, not the values: found in review, a null
budget skipped the budget check, so a 2 s interval rendered and the operator (10 s default budget)
refused to start, a crash loop.
*/ -}}
{{- /* The env var an operator.<key> is written to (OperatorSettings reads GRIDSHIFT_<KEY>): one spelling for the
container's env and the checks that read extraEnv. */ -}}
{{- define "gridshift.envName" -}}
{{- printf "GRIDSHIFT_%s" (snakecase . | upper) }}
{{- end }}

{{- /* The container's env entries the chart sets from the pod itself (the downward API), never from values: name
to fieldPath. One list for the container's env and the extraEnv checks, which must know every name the chart
writes (found in review: gridshift_namespace in extraEnv was not refused, the namespace entry being no operator.*). */ -}}
{{- define "gridshift.podEnv" -}}
{{- toJson (dict "GRIDSHIFT_NAMESPACE" "metadata.namespace" "POD_NAME" "metadata.name") }}
{{- end }}

{{- define "gridshift.operatorSettings" -}}
{{- $settings := include "gridshift.operatorDefaults" . | fromJson }}
{{- range $key, $value := (.Values.operator | default dict) }}
{{- if not (kindIs "invalid" $value) }}
{{- $_ := set $settings $key $value }}
{{- end }}
{{- end }}
{{- /*
extraEnv comes after the chart's env in the container, and Kubernetes gives a name set twice its last value,
so an extraEnv entry GRIDSHIFT_<KEY> is what the operator reads. Found in review: interval 5, a null budget
and extraEnv's budget "2" was refused as the default 10 s. A number is taken; anything else (valueFrom, no
value, "1_0", "abc") becomes null, and a check reading a null is left to the operator, which parses more
forms than the chart can and refuses the rest at start naming them. The operator reads names in any case, but
only the same name twice is resolved by Kubernetes (the last wins): a name differing from the chart's own entry
in case alone leaves which the operator reads to the order of the container's environment, which is not
defined (found in review: budget 6 in values, gridshift_planner_time_budget_seconds "2" in extraEnv, and the
operator started or crash-looped), so it is refused where the chart writes that entry itself.
*/ -}}
{{- $names := dict }}
{{- range $key, $_ := $settings }}
{{- $_ := set $names (include "gridshift.envName" $key) $key }}
{{- end }}
{{- $written := .Values.operator | default dict }}
{{- $podEnv := include "gridshift.podEnv" . | fromJson }}
{{- range (.Values.extraEnv | default list) }}
{{- $name := toString (get . "name") }}
{{- /* The operator reads GRIDSHIFT_* in any case; POD_NAME it does not read, and Kubernetes keeps pod_name apart. */ -}}
{{- range $own, $fieldPath := $podEnv }}
{{- if and (hasPrefix "GRIDSHIFT_" $own) (eq (upper $name) $own) (ne $name $own) }}
{{- fail (printf "extraEnv: %s differs from the chart's own %s (the pod's %s) in case alone; the operator reads names in any case and which of the two it gets is not defined: write it as %s, or leave it out" $name $own $fieldPath $own) }}
{{- end }}
{{- end }}
{{- $key := get $names (upper $name) }}
{{- if $key }}
{{- $canonical := include "gridshift.envName" $key }}
{{- if and (ne $name $canonical) (hasKey $written $key) (not (kindIs "invalid" (index $written $key))) }}
{{- fail (printf "extraEnv: %s differs from the chart's own %s (operator.%s) in case alone; the operator reads names in any case and which of the two it gets is not defined: write it as %s, or set operator.%s instead" $name $canonical $key $canonical $key) }}
{{- end }}
{{- $value := trim (toString (get . "value")) }}
{{- if and (hasKey . "value") (not (get . "valueFrom")) (regexMatch "^[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?$" $value) }}
{{- $_ := set $settings $key (float64 $value) }}
{{- else }}
{{- $_ := set $settings $key nil }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $settings }}
{{- end }}

{{- define "gridshift.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gridshift.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /* repository:tag, and @digest when pinned: the digest decides what runs, the tag tells people which. */ -}}
{{- define "gridshift.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- $repository := .Values.image.repository }}
{{- with (.Values.global | default dict).imageRegistry }}
{{- /* An umbrella chart's registry replaces the registry part of the repository. */ -}}
{{- $parts := splitList "/" $repository }}
{{- if and (gt (len $parts) 1) (or (contains "." (first $parts)) (contains ":" (first $parts)) (eq (first $parts) "localhost")) }}
{{- $repository = join "/" (rest $parts) }}
{{- end }}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" $repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{- /*
imagePullSecrets of the pods: the chart's and global.imagePullSecrets (names or {name: ...}), each name once.
An empty name (`{}`, {name: ""}, global's "") is left out: the API server takes it with a warning, and
an umbrella chart may pass one. The name alone: a LocalObjectReference has no other field.
*/ -}}
{{- define "gridshift.imagePullSecrets" -}}
{{- $secrets := list }}
{{- range concat (.Values.imagePullSecrets | default list) ((.Values.global | default dict).imagePullSecrets | default list) }}
{{- $name := . }}
{{- if kindIs "map" . }}
{{- $name = get . "name" | default "" }}
{{- end }}
{{- $entry := dict "name" $name }}
{{- if and $name (not (has $entry $secrets)) }}
{{- $secrets = append $secrets $entry }}
{{- end }}
{{- end }}
{{- with $secrets }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
A duration of the schema's form (one number, one unit: 500ms, 30s, 1m, 1h) in milliseconds: Helm has no
duration comparison.
*/}}
{{- define "gridshift.durationMs" -}}
{{- $number := regexFind "^[0-9]+" . | int64 -}}
{{- $unit := regexReplaceAll "^[0-9]+" . "" -}}
{{- mul $number (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit) -}}
{{- end -}}

{{/*
A monitor's scrapeTimeout, from (list "<values key>" <monitor values>). Found in review: the 10s default
rendered over a 5s interval and Prometheus refused the whole scrape config. Empty: the shorter of 10s and
the interval; longer than the interval: the render fails naming both.
*/}}
{{- define "gridshift.scrapeTimeout" -}}
{{- $key := index . 0 -}}
{{- $monitor := index . 1 -}}
{{- $interval := include "gridshift.durationMs" $monitor.interval | int64 -}}
{{- if $monitor.scrapeTimeout -}}
{{- if gt (include "gridshift.durationMs" $monitor.scrapeTimeout | int64) $interval -}}
{{- fail (printf "%s.scrapeTimeout %s is longer than %s.interval %s, which Prometheus refuses: set a timeout no longer than the interval, or leave scrapeTimeout empty (the shorter of 10s and the interval)" $key $monitor.scrapeTimeout $key $monitor.interval) -}}
{{- end -}}
{{- $monitor.scrapeTimeout -}}
{{- else if lt $interval 10000 -}}
{{- $monitor.interval -}}
{{- else -}}
10s
{{- end -}}
{{- end -}}
