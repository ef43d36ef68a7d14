{{/* Name of the chart, or nameOverride. */}}
{{- define "avi-autoscaler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, or the release name when it already
contains the chart name, or "<release>-<chart>". Truncated to 63 characters (DNS label).
*/}}
{{- define "avi-autoscaler.fullname" -}}
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

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "avi-autoscaler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "avi-autoscaler.labels" -}}
helm.sh/chart: {{ include "avi-autoscaler.chart" . }}
{{ include "avi-autoscaler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator pods (never change them on upgrade: selectors are immutable). */}}
{{- define "avi-autoscaler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "avi-autoscaler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The name of shard (index) of the operator's Deployments, from (list . index): the full
name with one shard, <fullname>-shard-<index> with several. */}}
{{- define "avi-autoscaler.shardName" -}}
{{- $root := index . 0 }}
{{- $fullname := include "avi-autoscaler.fullname" $root }}
{{- if gt (int $root.Values.sharding.shards) 1 }}
{{- printf "%s-shard-%d" $fullname (index . 1) }}
{{- else }}
{{- $fullname }}
{{- end }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "avi-autoscaler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "avi-autoscaler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference. */}}
{{- define "avi-autoscaler.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The operator's rules in the namespaces it watches: exactly the calls it makes there
(README, "Permissions"). Used by the ClusterRole (all namespaces) and by each Role (a list).
*/}}
{{- /* Cluster-scoped reads and writes, granted by a ClusterRole whatever watchNamespaces says:
AviControllers and Namespaces have no namespace a Role could grant them in. */}}
{{- define "avi-autoscaler.clusterRules" -}}
# Watch AviControllers (shared connections) and write the status of each probe.
- apiGroups: ["autoscaling.avi.dev"]
  resources: ["avicontrollers"]
  verbs: ["list", "watch"]
- apiGroups: ["autoscaling.avi.dev"]
  resources: ["avicontrollers/status"]
  verbs: ["patch"]
# Watch Namespaces' metadata, for the labels an AviController's namespaceSelector reads.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}

{{- define "avi-autoscaler.operatorRules" -}}
# Watch AviAutoscalers (kube-runtime's watcher: an initial list, then watches).
- apiGroups: ["autoscaling.avi.dev"]
  resources: ["aviautoscalers"]
  verbs: ["list", "watch"]
# Write their status (server-side apply on the status subresource only).
- apiGroups: ["autoscaling.avi.dev"]
  resources: ["aviautoscalers/status"]
  verbs: ["patch"]
# Watch HorizontalPodAutoscalers, to hold an AviAutoscaler whose target one also scales.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch"]
# Watch the targets' replica counts (an initial list, then watches) instead of reading /scale
# every tick; read one target with its status.readyReplicas after a write of its scale.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "replicasets"]
  verbs: ["get", "list", "watch"]
# Read and change the target's replicas, only through the scale subresource.
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale", "replicasets/scale"]
  verbs: ["get", "patch"]
{{- range .Values.rbac.extraScaleTargets }}
# A custom kind from rbac.extraScaleTargets: its scale subresource only.
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ range $i, $r := .resources }}{{ if $i }}, {{ end }}{{ printf "%s/scale" $r | quote }}{{ end }}]
  verbs: ["get", "patch"]
{{- end }}
# Record Events (kube-runtime's Recorder creates events.k8s.io Events and patches repeats).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.inlineControllers.enabled }}
# Inline connections only: read the credentials and CA Secret an AviAutoscaler names, by name,
# in its own namespace (the operator uses the data of labelled Secrets only).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
{{- end }}
