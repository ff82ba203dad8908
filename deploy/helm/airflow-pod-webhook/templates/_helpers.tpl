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

{{/* The generated 00-settings.yaml for airflow.releases and airflow.accounts. */}}
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
      {{- if not .Values.airflow.releases }} []{{ end }}
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
    airflowAccounts: {{ toJson (.Values.airflow.accounts | default list) }}
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
{{- if or .Values.airflow.releases .Values.airflow.accounts -}}
{{- $_ := set $files "00-settings.yaml" (include "apw.settings" .) -}}
{{- end -}}
{{- range $name, $text := .Values.policies.files -}}
{{- $_ := set $files $name $text -}}
{{- end -}}
{{- toJson $files -}}
{{- end -}}


{{/*
Airflow's accounts, as a JSON list, exactly as the webhook derives them from the Settings it
serves (Settings.airflow_usernames, webhook/policy/compile.py): per airflowReleases entry its
-scheduler, -worker and -triggerer, then every trustedCreators username, then per release its
-dag-processor and -api-server, then airflowAccounts; duplicates and empty names dropped.
The Settings are the first `kind: Settings` document of the chart's policy files (bundled,
generated from airflow.releases/airflow.accounts, or policies.files), in file-name order as the
webhook loads them. With policies.existingConfigMap the chart cannot read them: the accounts
come from airflow.releases and airflow.accounts, which must name what that ConfigMap's Settings
name; naming none refuses to render (every unlabelled pod Airflow writes would go unjudged).
*/}}
{{- define "apw.airflowUsernames" -}}
{{- $settings := include "apw.settingsDocument" . | fromJson -}}
{{- $identity := dig "spec" "identity" dict $settings -}}
{{- $creators := list -}}
{{- $accounts := list -}}
{{- range $release := dig "airflowReleases" list $identity -}}
{{- $prefix := printf "system:serviceaccount:%s:%s" (include "apw.yamlString" (dig "namespace" "" $release)) (include "apw.airflowFullname" $release) -}}
{{- $creators = concat $creators (list (printf "%s-scheduler" $prefix) (printf "%s-worker" $prefix) (printf "%s-triggerer" $prefix)) -}}
{{- $accounts = concat $accounts (list (printf "%s-dag-processor" $prefix) (printf "%s-api-server" $prefix)) -}}
{{- end -}}
{{- range $creator := dig "trustedCreators" list $identity -}}
{{- $creators = concat $creators (dig "usernames" list $creator) -}}
{{- end -}}
{{- $names := list -}}
{{- range $value := concat $creators $accounts (dig "airflowAccounts" list $identity) -}}
{{- $name := include "apw.yamlString" $value -}}
{{- if and $name (not (has $name $names)) -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{/* The Settings document the webhook serves (see apw.airflowUsernames), as JSON. */}}
{{- define "apw.settingsDocument" -}}
{{- $settings := dict -}}
{{- if .Values.policies.existingConfigMap -}}
{{- if not (or .Values.airflow.releases .Values.airflow.accounts) -}}
{{- fail "policies.existingConfigMap is set, so the chart cannot read the Settings the webhook serves: name the Airflow accounts they name with airflow.releases and/or airflow.accounts (the webhook configurations send every pod those accounts write to the webhook, whatever its labels)" -}}
{{- end -}}
{{- $settings = include "apw.settings" . | fromYaml -}}
{{- else -}}
{{- range $name, $text := (include "apw.policyFiles" . | fromJson) -}}
{{- range $doc := regexSplit "(?m)^---" $text -1 -}}
{{- $body := fromYaml $doc -}}
{{- if and (not $settings) (eq (get $body "kind" | toString) "Settings") -}}
{{- $settings = $body -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $settings -}}
{{- end -}}

{{/* The official Airflow chart's `airflow.fullname` of one airflowReleases entry (compile.py
airflow_chart_fullname): fullnameOverride, else the release name when it contains "airflow",
else <release>-airflow; 63 characters at most, no trailing "-". */}}
{{- define "apw.airflowFullname" -}}
{{- $name := include "apw.yamlString" (dig "fullnameOverride" "" .) -}}
{{- if not $name -}}
{{- $release := include "apw.yamlString" (dig "release" "" .) -}}
{{- $name = ternary $release (printf "%s-airflow" $release) (contains "airflow" $release) -}}
{{- end -}}
{{- regexReplaceAll "-+$" ($name | trunc 63) "" -}}
{{- end -}}

{{/* CEL true when request.userInfo.username is one of a list of usernames or globs (* any
run, ? one character); empty for none. The same text as webhook/airflow_accounts.py
username_condition. */}}
{{- define "apw.usernameCondition" -}}
{{- $exact := list -}}
{{- $globs := list -}}
{{- range $name := . -}}
{{- if or (contains "*" $name) (contains "?" $name) -}}
{{- $globs = append $globs $name -}}
{{- else -}}
{{- $exact = append $exact $name -}}
{{- end -}}
{{- end -}}
{{- $terms := list -}}
{{- if $exact -}}
{{- $quoted := list -}}
{{- range $name := $exact -}}
{{- $quoted = append $quoted (printf "\n  %s" (include "apw.celString" $name)) -}}
{{- end -}}
{{- $terms = append $terms (printf "request.userInfo.username in [%s\n]" (join "," $quoted)) -}}
{{- end -}}
{{- range $glob := $globs -}}
{{- $terms = append $terms (printf "request.userInfo.username.matches(%s)" (include "apw.celString" (include "apw.usernameRegex" $glob))) -}}
{{- end -}}
{{- join " ||\n" $terms -}}
{{- end -}}

{{/* A CEL string literal (as JSON writes it: \ and \" escaped). */}}
{{- define "apw.celString" -}}
"{{ . | replace "\\" "\\\\" | replace "\"" "\\\"" }}"
{{- end -}}

{{/* A glob as an anchored regular expression, valid in RE2 and Python (airflow_accounts.py
username_regex): * is .*, ? is ., other ASCII punctuation but :_@ and space is escaped. */}}
{{- define "apw.usernameRegex" -}}
^
{{- range $char := splitList "" . -}}
{{- if eq $char "*" -}}
.*
{{- else if eq $char "?" -}}
.
{{- else if and (regexMatch "^[\\x00-\\x7f]$" $char) (not (regexMatch "^[A-Za-z0-9:_@ ]$" $char)) -}}
\{{ $char }}
{{- else -}}
{{ $char }}
{{- end -}}
{{- end -}}
$
{{- end -}}

{{/* A scalar of a policy file as the webhook reads it: Helm's YAML 1.1 parser takes a plain
y or n for a boolean where the webhook's reads a string (its other booleans, yes/no/on/off/
true/false, are not names the webhook loads, so they cannot reach here). */}}
{{- define "apw.yamlString" -}}
{{- if kindIs "bool" . -}}
{{- ternary "y" "n" . -}}
{{- else -}}
{{- . | toString -}}
{{- end -}}
{{- end -}}

{{/* FlowSchema subjects of the task accounts (webhook/cluster/flowcontrol.py task_accounts):
per airflowReleases entry of the Settings the webhook serves, its -worker, -triggerer and
-dag-processor ServiceAccounts; duplicates dropped. As JSON. */}}
{{- define "apw.taskAccounts" -}}
{{- $settings := include "apw.settingsDocument" . | fromJson -}}
{{- $subjects := list -}}
{{- range $release := dig "spec" "identity" "airflowReleases" list $settings -}}
{{- $fullname := include "apw.airflowFullname" $release -}}
{{- range $suffix := list "-worker" "-triggerer" "-dag-processor" -}}
{{- $subject := dict "kind" "ServiceAccount" "serviceAccount" (dict "namespace" (include "apw.yamlString" (dig "namespace" "" $release)) "name" (printf "%s%s" $fullname $suffix)) -}}
{{- if not (has $subject $subjects) -}}
{{- $subjects = append $subjects $subject -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $subjects -}}
{{- end -}}

{{/* Mutual TLS on (non-empty) when the values give a client CA; refuses both at once. */}}
{{- define "apw.clientCA" -}}
{{- if and .Values.clientCA.crt .Values.clientCA.existingSecret -}}
{{- fail "clientCA.crt and clientCA.existingSecret both set: give the client CA one way" -}}
{{- end -}}
{{- if .Values.clientCA.crt -}}
{{- if not (contains "-----BEGIN CERTIFICATE-----" .Values.clientCA.crt) -}}
{{- fail "clientCA.crt is not a PEM certificate (pass the file with --set-file clientCA.crt=certs/client-ca.crt)" -}}
{{- end -}}
on
{{- else if .Values.clientCA.existingSecret -}}
on
{{- end -}}
{{- end -}}

{{/* The file name of the client CA in its volume. */}}
{{- define "apw.clientCAKey" -}}
{{- if .Values.clientCA.crt -}}
ca.crt
{{- else -}}
{{- .Values.clientCA.existingSecretKey -}}
{{- end -}}
{{- end -}}
