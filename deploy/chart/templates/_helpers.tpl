{{/* Chart name, truncated to the 63-character label limit. */}}
{{- define "openbao-backup.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: the release name, or "<release>-openbao-backup". */}}
{{- define "openbao-backup.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "openbao-backup.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels. Never app.kubernetes.io/managed-by=openbao-backup: that marks the operator's own Jobs. */}}
{{- define "openbao-backup.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openbao-backup.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "openbao-backup.labels" -}}
helm.sh/chart: {{ include "openbao-backup.chart" . }}
{{ include "openbao-backup.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openbao-backup
{{- end -}}

{{- define "openbao-backup.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "openbao-backup.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "openbao-backup.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "openbao-backup.executorImage" -}}
{{- default (include "openbao-backup.image" .) .Values.executor.image -}}
{{- end -}}

{{/* The leader-election Lease: one per release. */}}
{{- define "openbao-backup.leaseName" -}}
{{- default (printf "%s-leader" (include "openbao-backup.fullname" .) | trunc 63 | trimSuffix "-") .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* The freshness monitor's Pods: the same name and instance, component "monitor". */}}
{{- define "openbao-backup.monitorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "openbao-backup.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: monitor
{{- end -}}

{{- define "openbao-backup.monitorLabels" -}}
helm.sh/chart: {{ include "openbao-backup.chart" . }}
{{ include "openbao-backup.monitorSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openbao-backup
{{- end -}}
