{{/* fullnameOverride and nameOverride: Helm's usual meaning (the Serving Pack's chart takes them too). */}}
{{- define "llmpack.fullname" -}}
{{- $name := .Values.nameOverride | default .Chart.Name -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
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

{{/*
The settings that have two spellings, resolved by one rule: llmpack's key wins when it is set (not empty,
not null); else the LLM Serving Pack's key when it is set; else the built-in default. Every template reads
them from here (`include "llmpack.settings" . | fromYaml`), so the operator, RBAC, TLS and NOTES agree.
*/}}
{{- define "llmpack.settings" -}}
{{- $v := .Values }}
{{- $platform := $v.platform | default dict }}
{{- $packTls := dig "tls" nil $platform }}
{{- $packCertManager := dict }}{{/* the pack issues a certificate unless you bring your own Secret */}}
{{- if kindIs "map" $packTls }}
{{- $_ := set $packCertManager "on" (and (not (empty $packTls.clusterIssuer)) (empty $packTls.secretName)) }}
{{- end }}
{{- $out := dict }}
{{- range $row := list
  (list "baseDomain" $v.routing.baseDomain (dig "baseDomain" nil $platform) "")
  (list "externalGatewayName" $v.routing.externalGateway.name (dig "gateway" "external" "name" nil $platform) "llm-gateway")
  (list "externalGatewayNamespace" $v.routing.externalGateway.namespace (dig "gateway" "external" "namespace" nil $platform) "envoy-gateway-system")
  (list "internalGatewayName" $v.routing.internalGateway.name (dig "gateway" "internal" "name" nil $platform) "llm-gateway")
  (list "internalGatewayNamespace" $v.routing.internalGateway.namespace (dig "gateway" "internal" "namespace" nil $platform) "envoy-gateway-system")
  (list "manageListeners" $v.routing.manageListeners (dig "gateway" "manageSharedListeners" nil $platform) false)
  (list "tlsSecretName" $v.routing.tls.secretName (dig "tls" "secretName" nil $platform) "llm-gateway-tls")
  (list "certManager" $v.routing.tls.certManager.enabled $packCertManager.on false)
  (list "clusterIssuer" $v.routing.tls.certManager.clusterIssuer (dig "tls" "clusterIssuer" nil $platform) "")
  (list "oidcIssuer" $v.auth.oidc.issuer $v.auth.oidc.issuerURL "")
  (list "eppImage" $v.inferencePool.eppImage (dig "epp" "image" nil $v.defaults) "ghcr.io/llm-d/llm-d-inference-scheduler:v0.8.0")
}}
{{- $value := index $row 3 }}
{{- range $candidate := list (index $row 2) (index $row 1) }}{{/* the pack's, then ours over it */}}
{{- if and (not (kindIs "invalid" $candidate)) (ne (toString $candidate) "") }}
{{- $value = $candidate }}
{{- end }}
{{- end }}
{{- $_ := set $out (index $row 0) $value }}
{{- end }}
{{- /* The listeners' Secret: where you say; else the release's namespace when a certificate is issued here or
the pack's platform.tls names it (the pack keeps it beside its operator); else each Gateway's own. */ -}}
{{- $secretNamespace := $v.routing.tls.secretNamespace }}
{{- if and (not $secretNamespace) (or $out.certManager (and (kindIs "map" $packTls) (not (empty $packTls.secretName)))) }}
{{- $secretNamespace = .Release.Namespace }}
{{- end }}
{{- $_ := set $out "tlsSecretNamespace" $secretNamespace }}
{{- toYaml $out }}
{{- end -}}

{{/* Images of the Serving Pack name another product's programs: they are accepted in values, never run. */}}
{{- define "llmpack.isPackImage" -}}
{{- if hasPrefix "ghcr.io/nebari-dev/llm-serving-pack/" (toString .) }}true{{ end }}
{{- end -}}

{{- define "llmpack.operatorImage" -}}
{{- $image := .Values.operator.image }}
{{- if include "llmpack.isPackImage" $image.repository -}}
ghcr.io/nebari-dev/llmpack/operator:{{ .Chart.AppVersion }}
{{- else -}}
{{ $image.repository }}:{{ $image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end -}}

{{- define "llmpack.operatorPullPolicy" -}}
{{- if include "llmpack.isPackImage" .Values.operator.image.repository }}IfNotPresent{{ else }}{{ .Values.operator.image.pullPolicy }}{{ end }}
{{- end -}}

{{/* modelDownloader.image: our string, or the pack's {repository, tag} object. */}}
{{- define "llmpack.downloaderImage" -}}
{{- $image := .Values.modelDownloader.image }}
{{- $ours := printf "ghcr.io/nebari-dev/llmpack/model-downloader:%s" .Chart.AppVersion }}
{{- if kindIs "map" $image }}
{{- if or (not $image.repository) (include "llmpack.isPackImage" $image.repository) }}{{ $ours }}
{{- else }}{{ $image.repository }}:{{ $image.tag | default .Chart.AppVersion }}{{ end }}
{{- else }}{{ $image | default $ours }}{{ end }}
{{- end -}}

{{- define "llmpack.keyManager" -}}
{{ include "llmpack.fullname" . | trunc 51 | trimSuffix "-" }}-key-manager
{{- end -}}

{{- define "llmpack.keyManagerSelector" -}}
app.kubernetes.io/name: llmpack-key-manager
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llmpack.keyManagerLabels" -}}
{{ include "llmpack.keyManagerSelector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The OIDC settings both the operator and the key manager read: the issuer by the one rule, or the pack's
issuer-url key of auth.oidc.existingSecret (read when the pod starts). */}}
{{- define "llmpack.oidcEnv" -}}
{{- $s := include "llmpack.settings" . | fromYaml -}}
- name: LLMPACK_OIDC_ISSUER
  {{- if or $s.oidcIssuer (not .Values.auth.oidc.existingSecret) }}
  value: {{ $s.oidcIssuer | quote }}
  {{- else }}
  valueFrom:   # the pack's path: the issuer-url key of a Secret (read when the pod starts)
    secretKeyRef:
      name: {{ .Values.auth.oidc.existingSecret }}
      key: issuer-url
      optional: true
  {{- end }}
- name: LLMPACK_OIDC_JWKS_URI
  value: {{ .Values.auth.oidc.jwksUri | quote }}
- name: LLMPACK_OIDC_GROUPS_CLAIM
  value: {{ .Values.auth.oidc.groupsClaim | quote }}
- name: LLMPACK_OIDC_USERNAME_CLAIM
  value: {{ .Values.auth.oidc.usernameClaim | quote }}
- name: LLMPACK_OIDC_AUDIENCE
  value: {{ .Values.auth.oidc.audience | quote }}
{{- end -}}

{{/* The key manager runs when asked for and an issuer is known (it signs nobody in without one): "true" or "". */}}
{{- define "llmpack.keyManagerOn" -}}
{{- $s := include "llmpack.settings" . | fromYaml -}}
{{- if and .Values.keyManager.enabled (or $s.oidcIssuer .Values.auth.oidc.existingSecret) }}true{{ end }}
{{- end -}}

{{/* The key manager serves from the operator's image unless told otherwise; a Serving Pack image is never run. */}}
{{- define "llmpack.keyManagerImage" -}}
{{- $image := .Values.keyManager.image }}
{{- if or (not $image.repository) (include "llmpack.isPackImage" $image.repository) -}}
{{ include "llmpack.operatorImage" . }}
{{- else -}}
{{ $image.repository }}:{{ $image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end -}}
