"""The mutating hook, told as the users' stories: a DAG author's annotation in, the pod out."""

from __future__ import annotations

import json

import jsonpatch
import pytest

from tests.support.pods import airflow_pod
from tests.support.policies import policy_set
from webhook.dag_annotations import override_annotations
from webhook.mutation.mutate import mutate_pod

P = "airflow-pod-webhook.io/"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
ALL_PODS = ["airflow2-executor", "airflow2-executor-pod-override", "airflow3-executor",
            "airflow3-executor-pod-override", "airflow3-kpo", "airflow3-kpo-xcom"]


def annotate(pod: dict, annotations: dict) -> dict:
    pod.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
    return pod


def for_task(pod: dict, dag_id: str, task_id: str) -> dict:
    """The same pod, launched for another task (the bundled TaskPolicy targets example_dag)."""
    for field in ("labels", "annotations"):
        values = pod["metadata"].get(field, {})
        values.update({k: v for k, v in (("dag_id", dag_id), ("task_id", task_id)) if k in values})
    return pod


def container(pod: dict, name: str = "base") -> dict:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def mutated(pod: dict, policies, namespace: str = "data-airflow", username: str | None = None):
    result = mutate_pod(pod, policies, namespace, username)
    assert jsonpatch.apply_patch(pod, result.patch) == result.pod  # the patch is the result
    return result


def test_admin_template_is_applied_to_an_executor_pod(bundled) -> None:
    result = mutated(airflow_pod("airflow3-executor"), bundled)
    assert result.allowed
    spec = result.pod["spec"]
    assert spec["securityContext"] == {"fsGroup": 0, "runAsUser": 50000, "runAsNonRoot": True,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert container(result.pod)["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    explain = result.pod["metadata"]["annotations"][P + "applied"]
    assert explain.startswith(f"revision={bundled.revision}; PodTemplate/airflow-defaults")


def test_profile_opted_into_by_annotation(bundled) -> None:
    pod = for_task(airflow_pod("airflow2-executor-pod-override"), "reporting", "load")
    pod = annotate(pod, {P + "profiles": "highmem,spot"})
    result = mutated(pod, bundled)
    assert container(result.pod)["resources"]["limits"]["memory"] == "16Gi"
    # spot comes after highmem, so its node pool wins; tolerations add up
    assert result.pod["spec"]["nodeSelector"] == {"node-pool": "spot"}
    keys = [t["key"] for t in result.pod["spec"]["tolerations"]]
    assert keys == ["dedicated", "spot"]
    assert "Profile/highmem" in result.applied and "Profile/spot" in result.applied


def test_per_dag_task_policy_from_git(bundled) -> None:
    result = mutated(airflow_pod("airflow3-executor"), bundled)  # example_dag.extract
    assert container(result.pod)["resources"]["limits"]["memory"] == "4Gi"
    assert "TaskPolicy/example-dag-extract" in result.applied


def test_a_kpo_pod_never_gets_a_task_policy_by_the_dag_id_its_author_wrote() -> None:
    """A KPO author writes the pod's labels (and any task can use the worker's token): a
    TaskPolicy scoped by DAG or task id must not match KPO pods; by namespace and type it may."""
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: TaskPolicy
        metadata: {name: scoring}
        spec:
          match: {dagIds: [ml_pipeline], taskIds: [score_*]}
          template: {spec: {priorityClassName: batch}}
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: TaskPolicy
        metadata: {name: kpo-in-ml}
        spec:
          match: {podTypes: [kpo], namespaces: [data-airflow], dagIds: ["*"]}
          template: {spec: {activeDeadlineSeconds: 3600}}
    """)
    result = mutated(airflow_pod("airflow3-kpo-xcom"), policies)  # ml_pipeline.score_model
    assert "priorityClassName" not in result.pod["spec"]
    assert result.pod["spec"]["activeDeadlineSeconds"] == 3600
    assert result.applied == ("TaskPolicy/kpo-in-ml",)
    executor = for_task(airflow_pod("airflow3-executor"), "ml_pipeline", "score_model")
    assert mutated(executor, policies).pod["spec"]["priorityClassName"] == "batch"


def test_short_annotations_for_everyday_asks(bundled) -> None:
    pod = annotate(airflow_pod("airflow3-kpo"), override_annotations(
        cpu="2", memory="8Gi", node_pool="highmem"))
    result = mutated(pod, bundled)
    assert container(result.pod)["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
    assert result.pod["spec"]["nodeSelector"] == {"node-pool": "highmem"}


def test_pod_override_annotation_merges_env_and_sidecar_by_name(bundled) -> None:
    pod = annotate(airflow_pod("airflow2-executor-pod-override"), {P + "pod-override": json.dumps(
        {"spec": {"containers": [{"name": "base", "env": [{"name": "STAGE", "value": "dev"}]}]}})})
    result = mutated(pod, bundled)
    env = {e["name"]: e.get("value") for e in container(result.pod)["env"]}
    assert env["STAGE"] == "dev"
    assert [e["name"] for e in container(result.pod)["env"]].count("STAGE") == 1


def test_override_of_a_locked_field_is_refused(bundled) -> None:
    pod = annotate(airflow_pod("airflow3-executor"), {P + "pod-override": json.dumps(
        {"spec": {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}})})
    result = mutate_pod(pod, bundled, "data-airflow")
    assert not result.allowed and result.patch == []
    [refusal] = result.refusals
    assert refusal.message == (
        "annotation airflow-pod-webhook.io/pod-override: spec.securityContext.seccompProfile.type:"
        " is locked by the cluster template (spec.securityContext.seccompProfile)"
        " (PodTemplate/airflow-defaults lockedFields)")


def test_privileged_override_is_outside_the_allowlist(bundled) -> None:
    pod = annotate(airflow_pod("airflow3-executor"), {P + "pod-override": (
        "spec:\n  containers:\n  - name: base\n    securityContext: {privileged: true}\n")})
    [refusal] = mutate_pod(pod, bundled, "data-airflow").refusals
    assert refusal.field == "spec.containers[base].securityContext.privileged"
    assert refusal.rule == "OverridePolicy/default allowedFields"


@pytest.mark.parametrize(("annotations", "expected"), [
    ({P + "memory": "128Gi"}, "annotation airflow-pod-webhook.io/memory: spec.containers[base]"
                              ".resources.limits.memory: must be at most 64Gi (Envelope/airflow "
                              'perContainer), got "128Gi" (envelope: resources)'),
    ({P + "node-pool": "prod-db"}, "annotation airflow-pod-webhook.io/node-pool: spec.nodeSelector"
                                   ".node-pool: must be one of the allowed node pools (default, "
                                   'highmem, gpu, spot), got "prod-db" (envelope: placement)'),
    ({P + "pod-override": '{"spec": {"hostNetwork": true}}'}, "spec.hostNetwork: may not be"),
    ({P + "pod-override": '{"metadata": {"labels": {"airflow-worker": "7"}}}'},
     "Airflow owns this key"),
    ({P + "pod-override": '{"spec": {"containers": [{"name": "base", "args": ["x"]}]}}'},
     "Airflow sets the task's command"),
    ({P + "pod-override": '{"spec": {"tolerations": [{"key": "prod", "operator": "Exists"}]}}'},
     "spec.tolerations[0]: must be an allowed toleration (dedicated=airflow, nvidia.com/gpu, "
     'spot), got {"key":"prod","operator":"Exists"} (envelope: placement)'),
])
def test_overrides_outside_the_admins_bounds_are_refused(bundled, annotations, expected) -> None:
    result = mutate_pod(annotate(airflow_pod("airflow3-executor"), annotations), bundled,
                        "data-airflow")
    assert not result.allowed and not result.malformed
    assert expected in " | ".join(r.message for r in result.refusals)


@pytest.mark.parametrize(("annotations", "expected"), [
    ({P + "pod-override": "{not json: [}"}, "is neither JSON nor YAML"),
    ({P + "pod-override": '{"spec": {"containers": [{"name": "base", "resource": {}}]}}'},
     "spec.containers[base].resource: is not a field of Container"),
    ({P + "pod-override": '{"spec": {"activeDeadlineSeconds": "soon"}}'},
     "spec.activeDeadlineSeconds: must be an integer, got string"),
    ({P + "cpu": "two"}, "'two' is not a Kubernetes quantity"),
    ({P + "profiles": "highmem,huge"}, "unknown profile 'huge'"),
    ({P + "memroy": "4Gi"}, "annotation airflow-pod-webhook.io/memroy: unknown annotation"),
    ({P + "pod-override": "a: &a [1]\nb: *a\n"}, "YAML aliases are not allowed"),
    ({P + "pod-override": "x" * (70 * 1024)}, "is larger than 65536 bytes"),
])
def test_malformed_annotations_get_a_precise_message(bundled, annotations, expected) -> None:
    result = mutate_pod(annotate(airflow_pod("airflow3-kpo"), annotations), bundled,
                        "data-airflow")
    assert result.malformed
    assert expected in " | ".join(r.message for r in result.refusals)


def test_explicit_false_in_an_override_is_honoured() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: legacy}
        spec: {template: {spec: {hostNetwork: true, automountServiceAccountToken: true}}}
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: OverridePolicy
        metadata: {name: net}
        spec: {allowedFields: [spec.hostNetwork, spec.automountServiceAccountToken]}
    """)
    pod = annotate(airflow_pod("airflow3-executor"), {P + "pod-override": json.dumps(
        {"spec": {"hostNetwork": False, "automountServiceAccountToken": False}})})
    spec = mutated(pod, policies).pod["spec"]
    assert spec["hostNetwork"] is False and spec["automountServiceAccountToken"] is False


def test_xcom_sidecar_made_restricted_compliant(bundled) -> None:
    result = mutated(airflow_pod("airflow3-kpo-xcom"), bundled)
    sidecar = container(result.pod, "airflow-xcom-sidecar")
    assert sidecar["securityContext"]["runAsNonRoot"] is True
    assert sidecar["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert sidecar["resources"]["limits"] == {"cpu": "50m", "memory": "32Mi"}
    # and the template never adds that sidecar to pods that do not have one
    plain = mutated(airflow_pod("airflow3-kpo"), bundled).pod
    assert [c["name"] for c in plain["spec"]["containers"]] == ["base"]


def test_a_default_never_makes_a_privileged_pod_invalid(bundled) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    result = mutated(pod, bundled)
    # allowPrivilegeEscalation=false with privileged=true is a 422; the validator denies instead
    # (dropping capabilities is valid beside privileged, so that default stays)
    assert container(result.pod)["securityContext"] == {"privileged": True,
                                                        "capabilities": {"drop": ["ALL"]}}


@pytest.mark.parametrize("name", ALL_PODS)
def test_mutating_twice_is_a_no_op(bundled, name) -> None:
    once = mutated(annotate(airflow_pod(name), {P + "profiles": "gpu", P + "cpu": "1"}),
                   bundled).pod
    assert mutate_pod(once, bundled, "data-airflow").patch == []


@pytest.mark.parametrize("name", ALL_PODS)
def test_airflow_labels_and_annotations_are_untouched(bundled, name) -> None:
    pod = airflow_pod(name)
    result = mutated(pod, bundled)
    assert result.pod["metadata"]["labels"] == pod["metadata"]["labels"]
    before = pod["metadata"].get("annotations", {})
    after = dict(result.pod["metadata"]["annotations"])
    after.pop(P + "applied")
    assert after == before


def test_foreign_pod_is_untouched(bundled) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx", "labels": {
        "app": "nginx"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}
    result = mutate_pod(pod, bundled, "default")
    assert result.patch == [] and result.pod is pod and result.applied == ()


def test_other_airflow_pods_covered_by_label_selector() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: celery-workers}
        spec:
          match:
            podTypes: [other]
            labelSelector: {matchLabels: {component: worker, tier: airflow}}
          template: {spec: {priorityClassName: airflow}}
    """)
    celery = {"metadata": {"labels": {"component": "worker", "tier": "airflow"}},
              "spec": {"containers": [{"name": "worker", "image": "apache/airflow:3.0.0"}]}}
    assert mutated(celery, policies).pod["spec"]["priorityClassName"] == "airflow"
    assert mutate_pod({"metadata": {"labels": {"component": "worker"}}}, policies).patch == []


def test_untrusted_creator_gets_defaults_but_no_profiles(bundled) -> None:
    pod = annotate(airflow_pod("airflow3-executor"), {P + "profiles": "highmem"})
    result = mutated(pod, bundled, username="system:serviceaccount:team-a:ci-bot")
    assert "Profile/highmem" not in result.applied
    assert result.pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert "not a trusted creator" in result.warnings[0]
    trusted = mutated(airflow_pod("airflow3-executor"), bundled, username=SCHEDULER)
    assert trusted.warnings == ()


def test_no_override_policy_means_overrides_are_refused() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Profile
        metadata: {name: small}
        spec: {template: {spec: {priorityClassName: low}}}
    """)
    refused = mutate_pod(annotate(airflow_pod("airflow3-executor"), {P + "cpu": "1"}), policies)
    assert "no OverridePolicy allows DAG-author overrides" in refused.refusals[0].message
    ok = mutated(annotate(airflow_pod("airflow3-executor"), {P + "profiles": "small"}), policies)
    assert ok.pod["spec"]["priorityClassName"] == "low"


def test_dag_annotations_helper_round_trips_a_v1pod(bundled) -> None:
    from kubernetes.client import models as k8s

    annotations = override_annotations(
        pod=k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(
            name="base", env=[k8s.V1EnvVar(name="MODE", value="full")])])),
        profiles=["small"], gpu=1)
    result = mutated(annotate(airflow_pod("airflow3-executor"), annotations), bundled)
    base = container(result.pod)
    assert {"name": "MODE", "value": "full"} in base["env"]
    assert base["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_windows_pods_get_no_linux_only_defaults(bundled) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["os"] = {"name": "windows"}
    result = mutated(pod, bundled)
    # seccomp and allowPrivilegeEscalation are forbidden on Windows pods (a 422 otherwise)
    assert "seccompProfile" not in result.pod["spec"]["securityContext"]
    assert "allowPrivilegeEscalation" not in container(result.pod).get("securityContext", {})
    assert mutate_pod(result.pod, bundled, "data-airflow").patch == []


@pytest.mark.parametrize(("change", "problem"), [
    ({"metadata": {"annotations": ["x"]}}, "metadata.annotations is not a map"),
    ({"spec": {"containers": True}}, "spec.containers is not a list of containers"),
    ({"spec": "oops"}, "spec is not a map"),
])
def test_a_pod_not_shaped_like_a_pod_is_left_alone(bundled, change, problem) -> None:
    pod = {**airflow_pod("airflow3-executor"), **change}
    if "metadata" in change:
        pod["metadata"] = {**airflow_pod("airflow3-executor")["metadata"], **change["metadata"]}
    result = mutate_pod(pod, bundled, "data-airflow")
    assert result.patch == [] and result.warnings == (f"pod not mutated: {problem}",)


def test_refusals_quote_a_huge_value_briefly(bundled) -> None:
    pod = annotate(airflow_pod("airflow3-kpo"), {P + "memory": "9" * 100_000})
    messages = [r.message for r in mutate_pod(pod, bundled, "data-airflow").refusals]
    assert messages and all(len(m) < 300 and "must be at most 64Gi" in m for m in messages)


def test_a_cpu_request_above_the_templates_limit_raises_the_limit() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: limits}
        spec:
          template: {spec: {containers: [{name: base, resources: {limits: {cpu: "2"}}}]}}
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: OverridePolicy
        metadata: {name: o}
        spec: {allowedFields: ["spec.containers[*].resources"]}
    """)
    pod = annotate(airflow_pod("airflow3-kpo"), {P + "cpu": "4"})
    resources = container(mutated(pod, policies).pod)["resources"]
    # requests.cpu 4 over limits.cpu 2 would be a 422 from kube-apiserver
    assert resources == {"requests": {"cpu": "4"}, "limits": {"cpu": "4"}}
    untouched = airflow_pod("airflow3-kpo")
    untouched["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "3"},
                                                      "limits": {"cpu": "1"}}
    # already invalid as Airflow built it: not ours to change
    assert container(mutated(untouched, policies).pod)["resources"]["limits"] == {"cpu": "1"}


def test_a_thousand_task_policies_are_looked_up_not_scanned(monkeypatch) -> None:
    from webhook.airflow_pods import identify
    from webhook.policy.compile import PolicyDocument, compile_policies
    from webhook.policy.model import Match

    docs = [PolicyDocument(f"dag-{i}.yaml", 0, {
        "apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": "TaskPolicy",
        "metadata": {"name": f"dag-{i}"},
        "spec": {"match": {"dagIds": [f"dag_{i}"]},
                 "template": {"spec": {"priorityClassName": f"p{i}"}}}}) for i in range(1000)]
    policies, errors = compile_policies(docs, "big")
    assert not errors and policies is not None
    calls = []
    original = Match.matches
    monkeypatch.setattr(Match, "matches", lambda self, task: calls.append(self) or
                        original(self, task))
    executor = for_task(airflow_pod("airflow3-executor"), "dag_742", "extract")
    found = policies.task_policies_for(identify(executor, "data-airflow"))
    assert [p.name for p in found] == ["dag-742"]
    assert len(calls) == 1  # one candidate from the index, not a thousand matches
