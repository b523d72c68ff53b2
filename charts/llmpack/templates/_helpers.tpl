{{- define "llmpack.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "llmpack.labels" -}}
app.kubernetes.io/name: llmpack-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "llmpack.selector" -}}
app.kubernetes.io/name: llmpack-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llmpack.webhookService" -}}
{{ include "llmpack.fullname" . }}-webhook
{{- end -}}

{{- define "llmpack.webhookSecret" -}}
{{ include "llmpack.fullname" . }}-webhook-tls
{{- end -}}

{{/* Where the listeners' TLS Secret lives: as set, else the release's with cert-manager, else "" (each Gateway's). */}}
{{- define "llmpack.tlsSecretNamespace" -}}
{{- if .Values.routing.tls.secretNamespace -}}
{{ .Values.routing.tls.secretNamespace }}
{{- else if .Values.routing.tls.certManager.enabled -}}
{{ .Release.Namespace }}
{{- end -}}
{{- end -}}
