"""envelope: secrets — a DAG author's pod reaches none of Airflow's own Secrets, by any route;
executor pods keep exactly the references the chart's worker template makes."""

from __future__ import annotations

from tests.support.pods import airflow_pod
from tests.support.policies import bundled_envelope_messages, policy_set
from webhook.airflow_pods import PodType
from webhook.envelope.registry import check_fragment, check_pod
from webhook.envelope.secrets import secret_references

RULE = "envelope: secrets"
OWN = "must not name one of Airflow's own Secrets ({name}) (Envelope/airflow secrets), got " \
      '"{name}" (envelope: secrets)'


def secret_env(name: str, secret: str, key: str = "k") -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def test_a_kpo_pod_reaches_no_airflow_secret_by_any_route():
    pod = airflow_pod("airflow3-kpo")
    base = pod["spec"]["containers"][0]
    base["envFrom"] = [{"secretRef": {"name": "airflow-metadata"}}]
    base["env"] = [secret_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-metadata"),
                   secret_env("TEAM_TOKEN", "team-a-token")]
    pod["spec"]["volumes"] += [
        {"name": "jwt", "secret": {"secretName": "airflow-jwt-secret"}},
        {"name": "api", "projected": {"sources": [
            {"secret": {"name": "team-a-creds"}}, {"secret": {"name": "airflow-api-secret-key"}}]}},
        {"name": "vault", "csi": {"driver": "secrets-store.csi.k8s.io",
                                  "nodePublishSecretRef": {"name": "airflow-fernet-key"}}}]
    pod["spec"]["imagePullSecrets"] = [{"name": "team-a-pull"}, {"name": "airflow-registry"}]
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        "spec.containers[base].envFrom[0].secretRef.name " + OWN.format(name="airflow-metadata"),
        "spec.containers[base].env[AIRFLOW__DATABASE__SQL_ALCHEMY_CONN].valueFrom.secretKeyRef"
        ".name " + OWN.format(name="airflow-metadata"),
        "spec.imagePullSecrets[1].name " + OWN.format(name="airflow-registry"),
        "spec.volumes[api].projected.sources[1].secret.name "
        + OWN.format(name="airflow-api-secret-key"),
        "spec.volumes[jwt].secret.secretName " + OWN.format(name="airflow-jwt-secret"),
        "spec.volumes[vault].csi.nodePublishSecretRef.name "
        + OWN.format(name="airflow-fernet-key"),
    ]


def test_helms_release_record_and_airflows_account_tokens_are_airflows_own():
    # Helm keeps every chart value (passwords and keys given as values too) in the release's
    # Secret; a legacy token Secret of the scheduler's account is the scheduler.
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["volumes"] += [
        {"name": "helm", "secret": {"secretName": "sh.helm.release.v1.airflow.v3"}},
        {"name": "token", "secret": {"secretName": "airflow-scheduler-token-x7k2p"}},
        {"name": "other", "secret": {"secretName": "sh.helm.release.v1.team-a.v1"}}]
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        "spec.volumes[helm].secret.secretName must not name one of Airflow's own Secrets "
        "(sh.helm.release.v1.airflow.v*) (Envelope/airflow secrets), got "
        '"sh.helm.release.v1.airflow.v3" (envelope: secrets)',
        "spec.volumes[token].secret.secretName must not name one of Airflow's own Secrets "
        "(airflow-*-token-*) (Envelope/airflow secrets), got "
        '"airflow-scheduler-token-x7k2p" (envelope: secrets)']


def test_an_executor_pod_keeps_the_chart_templates_references_there_only():
    pod = airflow_pod("airflow3-executor")
    base = pod["spec"]["containers"][0]
    base["env"] = [secret_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-metadata"),
                   secret_env("AIRFLOW__CORE__FERNET_KEY", "airflow-fernet-key")]
    assert bundled_envelope_messages(pod, "executor", RULE) == []
    # the same Secret under another variable, in another container, or as a volume: refused
    base["env"].append(secret_env("DUMP", "airflow-metadata"))
    pod["spec"]["containers"].append({"name": "side", "image": "busybox:1.36", "env": [
        secret_env("AIRFLOW__CORE__FERNET_KEY", "airflow-fernet-key")]})
    pod["spec"]["volumes"] = [{"name": "db", "secret": {"secretName": "airflow-metadata"}}]
    assert bundled_envelope_messages(pod, "executor", RULE) == [
        "spec.containers[base].env[DUMP].valueFrom.secretKeyRef.name "
        + OWN.format(name="airflow-metadata"),
        "spec.containers[side].env[AIRFLOW__CORE__FERNET_KEY].valueFrom.secretKeyRef.name "
        + OWN.format(name="airflow-fernet-key"),
        "spec.volumes[db].secret.secretName " + OWN.format(name="airflow-metadata"),
    ]
    # and a KPO pod may not use even the template's variable
    assert len(bundled_envelope_messages(pod, "kpo", RULE)) == 5


def test_a_teams_own_secret_stays_usable_unless_the_admin_narrows_it(bundled):
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["env"] = [secret_env("T", "team-a-token")]
    assert bundled_envelope_messages(pod, "kpo", RULE) == []
    narrow = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: team-b}
        spec: {secrets: {allowed: ["team-b-*"]}}
    """).envelopes[0]
    assert [v.message for v in check_pod(pod, narrow, "node-pool", (), PodType.KPO)] == [
        'spec.containers[base].env[T].valueFrom.secretKeyRef.name must name an allowed Secret '
        '(team-b-*) (Envelope/team-b secrets), got "team-a-token" (envelope: secrets)']


def test_an_override_annotation_never_adds_a_secret_reference(bundled):
    fragment = {"spec": {"containers": [{"name": "base", "env": [
        secret_env("T", "team-a-token")]}]}}
    assert [v.message for v in check_fragment(fragment, bundled.envelopes[0], "node-pool")] == [
        "spec.containers[base].env[T].valueFrom.secretKeyRef.name must not be set: an override "
        "annotation never adds a reference to a Secret (Envelope/airflow secrets), got "
        '"team-a-token" (envelope: secrets)']


def test_references_without_a_name_field_are_not_references():
    pod = {"spec": {"imagePullSecrets": [{}, "x", {"name": "a"}],
                    "volumes": [{"name": "v", "secret": {}}, "y",
                                {"name": "p", "projected": {"sources": [{"secret": {}}]}}],
                    "containers": [{"name": "c", "env": [{"name": "E", "value": "1"}],
                                    "envFrom": [{"configMapRef": {"name": "m"}}]}]}}
    assert [(r.path, r.secret) for r in secret_references(pod)] == [
        ("spec.imagePullSecrets[2].name", "a")]


def narrow(spec: str):
    return policy_set(f"""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {{name: n}}
        spec: {{secrets: {spec}}}
    """).envelopes[0]


def messages(pod: dict, envelope, pod_type: PodType = PodType.KPO) -> list[str]:
    return [v.message for v in check_pod(pod, envelope, "p", (), pod_type)]


def test_every_pattern_a_name_breaks_is_named_and_an_empty_allowlist_says_none():
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["imagePullSecrets"] = [{"name": "airflow-metadata"}]
    assert messages(pod, narrow('{allowed: [], forbidden: ["airflow-*", "*-metadata"]}')) == [
        "spec.imagePullSecrets[0].name must not name one of Airflow's own Secrets (airflow-*, "
        '*-metadata) (Envelope/n secrets), got "airflow-metadata" (envelope: secrets)']
    pod["spec"]["imagePullSecrets"] = [{"name": "team"}]
    assert messages(pod, narrow("{allowed: []}")) == [
        'spec.imagePullSecrets[0].name must name an allowed Secret (none) (Envelope/n '
        'secrets), got "team" (envelope: secrets)']
    assert messages(pod, narrow("{allowed: [a, b]}")) == [
        'spec.imagePullSecrets[0].name must name an allowed Secret (a, b) (Envelope/n '
        'secrets), got "team" (envelope: secrets)']


def test_a_template_use_of_a_volume_allows_that_volume_by_every_volume_route():
    envelope = narrow('{forbidden: [db], templateUses: [{secret: db, podTypes: [executor], '
                      'volumes: [db-volume]}]}')
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["volumes"] = [
        {"name": "db-volume", "secret": {"secretName": "db"}},
        {"name": "db-volume", "projected": {"sources": [{"secret": {"name": "db"}}]}},
        {"name": "db-volume", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "db"}}}]
    assert messages(pod, envelope, PodType.EXECUTOR) == []
    assert len(messages(pod, envelope, PodType.KPO)) == 3
    for volume in pod["spec"]["volumes"]:
        volume["name"] = "other"
    assert len(messages(pod, envelope, PodType.EXECUTOR)) == 3
    # an envFrom of the same Secret is never a template use (it names no variable)
    pod["spec"]["volumes"] = []
    pod["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "db"}}]
    envelope = narrow('{forbidden: [db], templateUses: [{secret: db, podTypes: [executor], '
                      'containers: [base], env: [DB]}]}')
    assert len(messages(pod, envelope, PodType.EXECUTOR)) == 1
