{{- define "gridshift-member.labels" -}}
app.kubernetes.io/name: gridshift-member
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- /*
Fails the render when an object named after serviceAccount.name would get a name over the API server's 253
characters (a Secret's or admission policy's name is a DNS subdomain), naming the value and the setting that
renders that object. Only the names rendered count: the schema's cap was 234 for every release (the policy's
<name>-replica-pod-labels) and refused a longer name where the policy is off (found in review: 235 to 253
had installed). RBAC names have no such cap: a real kube-apiserver took a 263-character <name>-inventory.
*/ -}}
{{- define "gridshift-member.checkNameLength" -}}
{{- $name := .Values.serviceAccount.name }}
{{- $derived := list }}
{{- if .Values.serviceAccount.tokenSecret }}
{{- $derived = append $derived (list "-token" "the token Secret (serviceAccount.tokenSecret)") }}
{{- end }}
{{- if .Values.admissionPolicy.replicaPodLabels.enabled }}
{{- $derived = append $derived (list "-replica-pod-labels" "the ValidatingAdmissionPolicy and binding (admissionPolicy.replicaPodLabels.enabled)") }}
{{- end }}
{{- range $derived }}
{{- $full := printf "%s%s" $name (index . 0) }}
{{- if gt (len $full) 253 }}
{{- fail (printf "serviceAccount.name is %d characters: %s would be named <serviceAccount.name>%s, %d characters, over the API server's 253; use a name of at most %d characters, or turn that setting off" (len $name) (index . 1) (index . 0) (len $full) (sub 253 (len (index . 0)))) }}
{{- end }}
{{- end }}
{{- end }}
