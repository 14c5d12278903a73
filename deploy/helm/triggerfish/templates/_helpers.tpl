{{/* Names, labels and the checks every template relies on. */}}

{{- define "triggerfish.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name; components append "-fencing" etc., so keep room for it. */}}
{{- define "triggerfish.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "triggerfish.fencingName" -}}
{{- printf "%s-fencing" (include "triggerfish.fullname" .) -}}
{{- end -}}

{{- define "triggerfish.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable across upgrades. Call with (dict "ctx" $ "component" "engine"). */}}
{{- define "triggerfish.selectorLabels" -}}
app.kubernetes.io/name: {{ include "triggerfish.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "triggerfish.labels" -}}
helm.sh/chart: {{ include "triggerfish.chart" .ctx }}
{{ include "triggerfish.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: triggerfish
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "triggerfish.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "triggerfish.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "triggerfish.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "triggerfish.fencingServiceAccountName" -}}
{{- if .Values.fencing.serviceAccount.create -}}
{{- default (include "triggerfish.fencingName" .) .Values.fencing.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.fencing.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "triggerfish.accessKeySecret" -}}
{{- default (printf "%s-access-key" (include "triggerfish.fullname" .)) .Values.api.auth.existingSecret -}}
{{- end -}}

{{- define "triggerfish.configMapName" -}}
{{- default (include "triggerfish.fullname" .) .Values.existingConfigMap -}}
{{- end -}}

{{/* The cluster name: the value, else the config file's Cluster.Name, else the release name. */}}
{{- define "triggerfish.clusterName" -}}
{{- $fromFile := "" -}}
{{- if and (not .Values.existingConfigMap) (kindIs "map" .Values.config.Cluster) -}}
{{- $fromFile = .Values.config.Cluster.Name | default "" -}}
{{- end -}}
{{- .Values.cluster.name | default $fromFile | default .Release.Name -}}
{{- end -}}

{{/*
The control API's flags. Host names: the Service's DNS names (svc, svc.ns, svc.ns.svc,
svc.ns.svc.<clusterDomain>) and the extra ones; the pod IP (probes, Prometheus) is accepted by the API
itself as the address the connection arrived on. Call with (dict "ctx" $ "service" NAME "extra" LIST).
*/}}
{{- define "triggerfish.apiArgs" -}}
{{- $v := .ctx.Values -}}
{{- $ns := .ctx.Release.Namespace -}}
- --host
- 0.0.0.0
- --port
- {{ $v.api.port | quote }}
{{- if eq $v.api.auth.mode "requireAuth" }}
- --require-auth
{{- else }}
- --insecure
{{- end }}
{{- range list .service (printf "%s.%s" .service $ns) (printf "%s.%s.svc" .service $ns) (printf "%s.%s.svc.%s" .service $ns $v.clusterDomain) }}
- --allowed-host
- {{ . | quote }}
{{- end }}
{{- range .extra }}
- --allowed-host
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Env for --require-auth: the access key from its Secret. */}}
{{- define "triggerfish.accessKeyEnv" -}}
{{- if eq .Values.api.auth.mode "requireAuth" }}
- name: TRIGGERFISH_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "triggerfish.accessKeySecret" . }}
      key: {{ .Values.api.auth.accessKeyIdKey }}
- name: TRIGGERFISH_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "triggerfish.accessKeySecret" . }}
      key: {{ .Values.api.auth.secretAccessKeyKey }}
{{- end }}
{{- end -}}

{{/* An HTTP probe on the API port. Call with (dict "probe" .Values.probes.liveness). */}}
{{- define "triggerfish.probe" -}}
httpGet:
  path: {{ .probe.path }}
  port: http
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end -}}

{{/* Refusals with the fix, for values the schema cannot judge alone. */}}
{{- define "triggerfish.checks" -}}
{{- $v := .Values -}}
{{- if le (int $v.terminationGracePeriodSeconds) 60 -}}
{{- fail (printf "terminationGracePeriodSeconds: %v is not above the engine's drain time (60 s); Kubernetes would SIGKILL a draining pod before it commits. Use 75 or more." $v.terminationGracePeriodSeconds) -}}
{{- end -}}
{{- if and (not $v.cluster.enabled) (or $v.keda.enabled (gt (int $v.replicas) 1)) -}}
{{- fail "cluster.enabled: false runs one process with its own SQLite state, so it cannot have replicas > 1 or keda.enabled (each pod would mint its own consumer groups and consume every record again). Set cluster.enabled: true, or replicas: 1 and keda.enabled: false." -}}
{{- end -}}
{{- if and $v.cluster.enabled (not $v.cluster.bootstrapServers) -}}
{{- $fromFile := false -}}
{{- if $v.existingConfigMap -}}{{- $fromFile = true -}}{{- end -}}
{{- if and (kindIs "map" $v.config.Cluster) (hasKey (default dict $v.config.Cluster) "BootstrapServers") -}}{{- $fromFile = true -}}{{- end -}}
{{- if not $fromFile -}}
{{- fail "cluster.bootstrapServers: empty and config.Cluster.BootstrapServers is not set either; give the Kafka that holds the cluster state, e.g. --set cluster.bootstrapServers=my-cluster-kafka-bootstrap.kafka.svc:9092" -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.api.auth.mode "insecure") (not $v.networkPolicy.enabled) (not $v.api.auth.insecureWithoutNetworkPolicy) -}}
{{- fail "api.auth.mode: insecure lets anyone who reaches port 9000 invoke functions and create mappings; set networkPolicy.enabled: true (with networkPolicy.ingressFrom), or api.auth.insecureWithoutNetworkPolicy: true if another policy (a service mesh) protects the port, or use api.auth.mode: requireAuth" -}}
{{- end -}}
{{- if and $v.keda.enabled (not $v.keda.triggers) -}}
{{- fail "keda.enabled: true needs keda.triggers: one {topic, consumerGroup} per mapping (consumerGroup = the mapping's ConsumerGroupId or UUID)" -}}
{{- end -}}
{{- if and $v.keda.enabled $v.keda.authentication.enabled (not $v.keda.authentication.secretTargetRef) (not $v.keda.authentication.podIdentity) -}}
{{- fail "keda.authentication.enabled: true needs keda.authentication.secretTargetRef (sasl, username, password, tls, ca ...) or keda.authentication.podIdentity (e.g. {provider: aws} for MSK IAM)" -}}
{{- end -}}
{{- if and (not $v.existingConfigMap) (not $v.config) -}}
{{- fail "config: empty; give the triggerfish.yaml to run (Functions, EventSourceMappings) or existingConfigMap" -}}
{{- end -}}
{{- end -}}
