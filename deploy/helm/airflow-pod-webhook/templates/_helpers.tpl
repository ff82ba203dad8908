{{/* Object names: "airflow-pod-webhook" unless fullnameOverride says otherwise. */}}
{{- define "apw.fullname" -}}
{{- .Values.fullnameOverride | default "airflow-pod-webhook" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels the kustomize base puts on every object, plus Helm's own. */}}
{{- define "apw.labels" -}}
app.kubernetes.io/name: airflow-pod-webhook
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The selector of the webhook pods (identical to the kustomize base). */}}
{{- define "apw.selector" -}}
app.kubernetes.io/name: airflow-pod-webhook
app.kubernetes.io/component: webhook
{{- end -}}

{{/* The image; refuses to render without a repository (no placeholder nobody can pull). */}}
{{- define "apw.image" -}}
{{- $repository := required "image.repository is required: the webhook image you built from the Dockerfile and pushed (e.g. --set image.repository=registry.io/team/airflow-pod-webhook); there is no default, because an image no node can pull leaves the fail-closed validating hook blocking every Airflow pod" .Values.image.repository -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "apw.policiesConfigMap" -}}
{{- .Values.policies.existingConfigMap | default (printf "%s-policies" (include "apw.fullname" .)) -}}
{{- end -}}

{{- define "apw.tlsSecret" -}}
{{- if eq .Values.certificates.mode "existingSecret" -}}
{{- required "certificates.existingSecret is required with mode existingSecret" .Values.certificates.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "apw.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
The serving cert and its CA, as a dict {crt, key, ca} (PEM), for modes generate and files.
generate: the Secret already in the cluster when there is one (so caBundle and cert survive
upgrades and rollbacks), else a new CA (10 years) and a cert for the Service's names.
Memoised in .Values so the Secret and both configurations see the same CA.
*/}}
{{- define "apw.tls" -}}
{{- if not (hasKey .Values "__tls") -}}
{{- $tls := dict -}}
{{- if eq .Values.certificates.mode "files" -}}
{{- $_ := set $tls "crt" (required "certificates.tlsCrt is required with mode files (--set-file certificates.tlsCrt=certs/tls.crt)" .Values.certificates.tlsCrt) -}}
{{- $_ := set $tls "key" (required "certificates.tlsKey is required with mode files (--set-file certificates.tlsKey=certs/tls.key)" .Values.certificates.tlsKey) -}}
{{- $_ := set $tls "ca" (required "certificates.caCrt is required with mode files (--set-file certificates.caCrt=certs/ca.crt)" .Values.certificates.caCrt) -}}
{{- else if eq .Values.certificates.mode "existingSecret" -}}
{{- $_ := set $tls "ca" (required "certificates.caCrt (the PEM CA of the existing Secret's cert) is required with mode existingSecret" .Values.certificates.caCrt) -}}
{{- else if eq .Values.certificates.mode "generate" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "apw.tlsSecret" .) -}}
{{- if and $existing (index ($existing.data | default dict) "ca.crt") -}}
{{- $_ := set $tls "crt" (index $existing.data "tls.crt" | b64dec) -}}
{{- $_ := set $tls "key" (index $existing.data "tls.key" | b64dec) -}}
{{- $_ := set $tls "ca" (index $existing.data "ca.crt" | b64dec) -}}
{{- else -}}
{{- $service := include "apw.fullname" . -}}
{{- $names := list $service (printf "%s.%s" $service .Release.Namespace) (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.cluster.local" $service .Release.Namespace) -}}
{{- $ca := genCA (printf "%s-ca" $service) 3650 -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $service .Release.Namespace) .Values.certificates.ipAddresses (concat $names .Values.certificates.extraDnsNames) 3650 $ca -}}
{{- $_ := set $tls "crt" $cert.Cert -}}
{{- $_ := set $tls "key" $cert.Key -}}
{{- $_ := set $tls "ca" $ca.Cert -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values "__tls" $tls -}}
{{- end -}}
{{- toJson (get .Values "__tls") -}}
{{- end -}}

{{/* clientConfig of one webhook: (list $ "/path"). */}}
{{- define "apw.clientConfig" -}}
{{- $ := index . 0 -}}
{{- $path := index . 1 -}}
{{- if $.Values.webhook.url }}
url: {{ printf "%s%s" (trimSuffix "/" $.Values.webhook.url) $path | quote }}
{{- else }}
service:
  name: {{ include "apw.fullname" $ }}
  namespace: {{ $.Release.Namespace }}
  path: {{ $path }}
  port: 443
{{- end }}
{{- if ne $.Values.certificates.mode "certManager" }}
caBundle: {{ (include "apw.tls" $ | fromJson).ca | b64enc }}
{{- end }}
{{- end -}}

{{/* metadata of both webhook configurations. */}}
{{- define "apw.configurationMetadata" -}}
name: {{ include "apw.fullname" . }}
labels:
  {{- include "apw.labels" . | nindent 2 }}
  app.kubernetes.io/component: webhook
{{- if eq .Values.certificates.mode "certManager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "apw.tlsSecret" .) }}
{{- end }}
{{- end -}}

{{/* The generated 00-settings.yaml for airflow.releases. */}}
{{- define "apw.settings" -}}
# GENERATED by the airflow-pod-webhook chart from its values (airflow.releases, settings).
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Settings
metadata:
  name: settings
spec:
  annotationPrefix: {{ .Values.settings.annotationPrefix | quote }}
  nodePoolLabel: {{ .Values.settings.nodePoolLabel | quote }}
  identity:
    untrusted: {{ .Values.settings.untrusted }}
    airflowReleases:
      {{- range .Values.airflow.releases }}
      - release: {{ .release | quote }}
        namespace: {{ .namespace | quote }}
        {{- with .taskNamespaces }}
        taskNamespaces: {{ toJson . }}
        {{- end }}
        {{- with .fullnameOverride }}
        fullnameOverride: {{ . | quote }}
        {{- end }}
      {{- end }}
    trustedCreators:
      # Every other namespace: no creator is trusted with profiles or overrides.
      - namespaces: ["*"]
        usernames: []
{{- end -}}

{{/* {file name: text} of the policy ConfigMap. */}}
{{- define "apw.policyFiles" -}}
{{- $files := dict -}}
{{- if .Values.policies.bundled -}}
{{- range $path, $_ := .Files.Glob "files/policies/*.yaml" -}}
{{- $_ := set $files (base $path) ($.Files.Get $path) -}}
{{- end -}}
{{- end -}}
{{- if .Values.airflow.releases -}}
{{- $_ := set $files "00-settings.yaml" (include "apw.settings" .) -}}
{{- end -}}
{{- range $name, $text := .Values.policies.files -}}
{{- $_ := set $files $name $text -}}
{{- end -}}
{{- toJson $files -}}
{{- end -}}
