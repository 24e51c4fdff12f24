{{/* Names, labels and the parts every Baton pod shares. */}}

{{- define "baton.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "baton.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "baton.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* The four services: console script, values key, host and port variables. */}}
{{- define "baton.components" -}}
ingest: {values: ingest, command: baton-ingest, hostVar: BATON_INGEST_HOST, portVar: BATON_INGEST_PORT}
scorer: {values: scorer, command: baton-scorer, hostVar: BATON_SCORER_HOST, portVar: BATON_SCORER_PORT}
router: {values: router, command: baton-router, hostVar: BATON_ROUTER_HOST, portVar: BATON_ROUTER_PORT}
sla-monitor: {values: slaMonitor, command: baton-sla-monitor, hostVar: BATON_SLA_HOST, portVar: BATON_SLA_PORT}
{{- end -}}

{{- define "baton.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "baton.fullname" .)) -}}
{{- end -}}

{{- define "baton.image" -}}
{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | toString) }}
{{- end -}}

{{/* The Secret's keys each service reads (the variables of the same names); every
container gets only its own. The migrations Job runs the router's and the SLA
monitor's settings. */}}
{{- define "baton.secretKeys" -}}
common: [BATON_LOG_HASH_KEY, BATON_KAFKA_SASL_USERNAME, BATON_KAFKA_SASL_PASSWORD, BATON_PRIVACY_KEY]
ingest: [BATON_INGEST_WRITE_KEYS, DATABASE_URL]
scorer: [BATON_ADMIN_TOKEN, DATABASE_URL]
router: [BATON_ADMIN_TOKEN, DATABASE_URL, BATON_ROUTER_SECRET_KEY, BATON_ROUTER_LINK_SECRET]
sla-monitor: [BATON_ADMIN_TOKEN, DATABASE_URL]
{{- end -}}

{{/* env entries from the Secret for one service: (dict "root" $ "name" <service>). */}}
{{- define "baton.secretEnv" -}}
{{- $keys := include "baton.secretKeys" .root | fromYaml -}}
{{- $secret := include "baton.secretName" .root -}}
{{- range $key := concat (index $keys .name) $keys.common }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end -}}

{{- define "baton.envFrom" -}}
- configMapRef:
    name: {{ include "baton.fullname" . }}-config
{{- end -}}

{{/* Volumes: scratch /tmp (the root file system is read-only) and the Kafka TLS files. */}}
{{- define "baton.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.kafka.tlsSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tlsSecret }}
{{- end }}
{{- end -}}

{{- define "baton.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tlsSecret }}
- name: kafka-tls
  mountPath: /etc/baton/kafka-tls
  readOnly: true
{{- end }}
{{- end -}}
