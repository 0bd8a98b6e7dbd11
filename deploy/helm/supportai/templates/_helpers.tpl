{{/* Names and labels. Objects are named <release>-<part>, e.g. supportai-web. */}}
{{- define "supportai.fullname" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "supportai.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "supportai.labels" -}}
app.kubernetes.io/name: supportai
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "supportai.selector" -}}
app.kubernetes.io/name: supportai
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "supportai.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "supportai.fullname" .)) -}}
{{- end -}}

{{- define "supportai.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "supportai.fullname" . }}-config
  - secretRef:
      name: {{ include "supportai.secretName" . }}
{{- end -}}

{{- define "supportai.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "supportai.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
{{- end -}}

{{/* Pods start only on a current schema: the migration Job of this release applies it. */}}
{{- define "supportai.waitForMigrations" -}}
initContainers:
  - name: wait-for-migrations
    image: {{ include "supportai.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args: ["wait-for-migrations"]
    env:
      - name: MIGRATION_WAIT_SECONDS
        value: {{ .Values.migrations.waitSeconds | quote }}
    {{- include "supportai.envFrom" . | nindent 4 }}
    resources:
      requests: {cpu: 100m, memory: 256Mi}
      limits: {cpu: 500m, memory: 512Mi}
    {{- include "supportai.containerSecurity" . | nindent 4 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
{{- end -}}

{{- define "supportai.dataClaim" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "supportai.fullname" .)) -}}
{{- end -}}
