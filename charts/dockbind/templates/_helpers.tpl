{{- define "dockbind.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dockbind.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "dockbind.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "dockbind.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dockbind.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dockbind.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dockbind.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dockbind.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dockbind.labels" -}}
{{ include "dockbind.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The watched namespaces as a JSON list (read it with fromJsonArray): watchNamespaces plus the
deprecated watchNamespace, each once; [] = every namespace.
*/}}
{{- define "dockbind.watchNamespaces" -}}
{{- $ns := list -}}
{{- range .Values.watchNamespaces -}}
{{- $ns = append $ns . -}}
{{- end -}}
{{- if .Values.watchNamespace -}}
{{- $ns = append $ns .Values.watchNamespace -}}
{{- end -}}
{{- $ns | uniq | toJson -}}
{{- end -}}

{{/* Rules on ServiceBindings and Events: keep equal to manifests/rbac.yaml (test/unit/k8s-chart.test.ts). */}}
{{- define "dockbind.bindingRules" -}}
- apiGroups: ["dockbind.io"]
  resources: ["servicebindings"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["dockbind.io"]
  resources: ["servicebindings/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
