{{/* The chart name. */}}
{{- define "kubestash-catalog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name, the prefix of every resource name (at most 63 characters, as
some fields are DNS labels). Cluster-scoped objects carry it too, so two
releases in a cluster do not clash on names.
*/}}
{{- define "kubestash-catalog.fullname" -}}
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

{{- define "kubestash-catalog.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "kubestash-catalog.labels" -}}
helm.sh/chart: {{ include "kubestash-catalog.chart" . }}
app.kubernetes.io/name: {{ include "kubestash-catalog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of a component (apiserver, controller). */}}
{{- define "kubestash-catalog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubestash-catalog.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kubestash-catalog.componentLabels" -}}
{{ include "kubestash-catalog.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kubestash-catalog.apiserver.fullname" -}}
{{- printf "%s-apiserver" (include "kubestash-catalog.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubestash-catalog.controller.fullname" -}}
{{- printf "%s-controller" (include "kubestash-catalog.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubestash-catalog.apiserver.serviceAccountName" -}}
{{- if .Values.apiserver.serviceAccount.create }}
{{- default (include "kubestash-catalog.apiserver.fullname" .) .Values.apiserver.serviceAccount.name }}
{{- else }}
{{- required "apiserver.serviceAccount.name is required when apiserver.serviceAccount.create is false" .Values.apiserver.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubestash-catalog.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "kubestash-catalog.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create is false" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the catalog server's serving certificate. */}}
{{- define "kubestash-catalog.apiserver.tlsSecretName" -}}
{{- if eq .Values.apiserver.tls.source "secret" }}
{{- required "apiserver.tls.secretName is required when apiserver.tls.source is secret" .Values.apiserver.tls.secretName }}
{{- else }}
{{- printf "%s-cert" (include "kubestash-catalog.apiserver.fullname" .) }}
{{- end }}
{{- end }}

{{/* The name kube-apiserver checks the serving certificate for. */}}
{{- define "kubestash-catalog.apiserver.serviceDNS" -}}
{{- printf "%s.%s.svc" (include "kubestash-catalog.apiserver.fullname" .) .Release.Namespace }}
{{- end }}

{{/* An image reference: registry/repository:tag, tag defaulting to appVersion. */}}
{{- define "kubestash-catalog.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag }}
{{- if .image.registry }}
{{- printf "%s/%s:%s" .image.registry .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* --local-backend-dirs and the hostPath volumes it needs. */}}
{{- define "kubestash-catalog.localBackendVolumeMounts" -}}
{{- range $i, $dir := .Values.localBackendDirs }}
- name: local-backend-{{ $i }}
  mountPath: {{ $dir }}
{{- end }}
{{- end }}

{{- define "kubestash-catalog.localBackendVolumes" -}}
{{- range $i, $dir := .Values.localBackendDirs }}
- name: local-backend-{{ $i }}
  hostPath:
    path: {{ $dir }}
    type: Directory
{{- end }}
{{- end }}

{{/*
The chart-made serving pair (apiserver.tls.source=helm) as JSON {crt, key,
ca}, base64: the existing Secret's while it has a CA, else a new CA and a
certificate for the Service's names. Made once per render and shared by the
Secret and the APIService through a cache in .Values.
*/}}
{{- define "kubestash-catalog.apiserver.helmTLS" -}}
{{- $cache := .Values.apiserver.tls }}
{{- if not (hasKey $cache "_pair") }}
{{- $secretName := include "kubestash-catalog.apiserver.tlsSecretName" . }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName }}
{{- $pair := dict }}
{{- if and $existing $existing.data (index $existing.data "ca.crt") }}
{{- $pair = dict "crt" (index $existing.data "tls.crt") "key" (index $existing.data "tls.key") "ca" (index $existing.data "ca.crt") }}
{{- else }}
{{- $dns := include "kubestash-catalog.apiserver.serviceDNS" . }}
{{- $days := int .Values.apiserver.tls.validityDays }}
{{- $ca := genCA (printf "%s-ca" (include "kubestash-catalog.fullname" .)) $days }}
{{- $cert := genSignedCert $dns nil (list $dns (printf "%s.%s" $dns .Values.apiserver.tls.clusterDomain)) $days $ca }}
{{- $pair = dict "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) "ca" ($ca.Cert | b64enc) }}
{{- end }}
{{- $_ := set $cache "_pair" $pair }}
{{- end }}
{{- get $cache "_pair" | toJson }}
{{- end }}

{{/*
The pod and container security contexts of a server (dict "root" $
"values" .Values.apiserver). With localBackendDirs both servers run as
uid 0, still with no capability: the Jobs write the backends' files as
root, and only their owner may read and write them. Without, the values
as given (non-root by default).
*/}}
{{- define "kubestash-catalog.podSecurityContext" -}}
{{- $ctx := deepCopy (default dict .values.podSecurityContext) }}
{{- if .root.Values.localBackendDirs }}
{{- $_ := set $ctx "runAsUser" 0 }}
{{- $_ := set $ctx "runAsGroup" 0 }}
{{- $_ := set $ctx "runAsNonRoot" false }}
{{- end }}
{{- with $ctx }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{- define "kubestash-catalog.securityContext" -}}
{{- $ctx := deepCopy (default dict .values.securityContext) }}
{{- if .root.Values.localBackendDirs }}
{{- $_ := set $ctx "runAsNonRoot" false }}
{{- if hasKey $ctx "runAsUser" }}{{ $_ := set $ctx "runAsUser" 0 }}{{ end }}
{{- if hasKey $ctx "runAsGroup" }}{{ $_ := set $ctx "runAsGroup" 0 }}{{ end }}
{{- end }}
{{- with $ctx }}
{{- toYaml . }}
{{- end }}
{{- end }}
