"""The mutating hook, told as the users' stories: a DAG author's annotation in, the pod out."""

from __future__ import annotations

import dataclasses
import json

import jsonpatch
import pytest

from tests.support.pods import airflow_pod
from tests.support.policies import policy_set
from webhook.airflow_pods import PodType
from webhook.dag_annotations import override_annotations
from webhook.mutation import mutate as mutate_module
from webhook.mutation.mutate import KEEP_IDENTITY_RULE, malformed_shape, mutate_pod
from webhook.policy.model import Settings

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


# --- the mutation keeps what selects and identifies the pod --------------------------------------


@pytest.mark.parametrize("fragment, field", [
    ({"metadata": None}, "metadata"),
    ({"metadata": {"labels": None}}, "metadata.labels"),
    ({"metadata": {"annotations": None}}, "metadata.annotations"),
])
def test_overrides_may_not_drop_labels_or_annotations(bundled, fragment, field) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][P + "pod-override"] = json.dumps(fragment)
    result = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert [r.message for r in result.refusals] == [
        f"annotation {P}pod-override: {field}: may not be removed or replaced: it holds "
        "Airflow's labels and annotations; set single keys instead (Airflow-owned field)"]
    assert result.patch == []


def test_the_result_is_checked_whatever_produced_it(bundled, monkeypatch) -> None:
    """The invariant is judged on the mutated pod, not inferred from the request: with the
    guards before it broken, a mutation that drops the labels is refused, not admitted."""
    from webhook.mutation import overrides

    monkeypatch.setattr(overrides, "_owned", lambda path, task: None)
    monkeypatch.setattr(mutate_module, "_keep_airflow_metadata", lambda original, result: result)
    # an OverridePolicy that lets annotations set labels (the bundled one no longer does)
    [default] = bundled.override_policies
    labels_allowed = dataclasses.replace(bundled, override_policies=(dataclasses.replace(
        default, allowed_fields=(*default.allowed_fields, ("metadata", "labels"))),))
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][P + "pod-override"] = json.dumps({"metadata": {"labels": None}})
    before = json.loads(json.dumps(pod))
    result = mutate_pod(pod, labels_allowed, "data-airflow", SCHEDULER)
    assert not result.allowed and result.patch == []
    assert (result.pod, result.task.dag_id) == (before, "example_dag")
    assert {(r.annotation, r.rule) for r in result.refusals} == {("", KEEP_IDENTITY_RULE)}
    messages = [r.message for r in result.refusals]
    assert ("metadata.labels.airflow-worker: Airflow's own key would be removed by the "
            f"mutation ({KEEP_IDENTITY_RULE})") in messages
    assert ("metadata: the mutated pod would no longer be selected by the webhooks' "
            f"matchConditions ({KEEP_IDENTITY_RULE})") in messages


@pytest.mark.parametrize("field", ["labels", "annotations"])
def test_a_mutation_that_changes_an_airflow_value_is_refused(bundled, monkeypatch, field
                                                             ) -> None:
    def relabel(original: dict, result: dict) -> dict:
        meta = {**result["metadata"], field: {**result["metadata"][field],
                                              "dag_id": "nfs_export"}}
        return {**result, "metadata": meta}

    monkeypatch.setattr(mutate_module, "_keep_airflow_metadata", relabel)
    result = mutate_pod(airflow_pod("airflow3-executor"), bundled, "data-airflow", SCHEDULER)
    assert [r.message for r in result.refusals] == [
        f"metadata.{field}.dag_id: Airflow's own key would be changed by the mutation "
        f"({KEEP_IDENTITY_RULE})"]


def test_with_the_override_guard_broken_airflows_keys_still_leave_as_they_came(
        monkeypatch) -> None:
    from webhook.mutation import overrides

    monkeypatch.setattr(overrides, "_owned", lambda path, task: None)
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: OverridePolicy
        metadata: {name: metadata}
        spec:
          allowedFields: [metadata.labels, metadata.annotations]
    """)
    pod = airflow_pod("airflow3-executor")
    labels, annotations = dict(pod["metadata"]["labels"]), dict(pod["metadata"]["annotations"])
    fragment = {"metadata": {"labels": {"dag_id": "nfs_export", "team": "ml"},
                             "annotations": {"task_id": "export", "note": "x"}}}
    annotate(pod, {P + "pod-override": json.dumps(fragment)})
    result = mutated(pod, policies)
    assert result.allowed
    assert result.pod["metadata"]["labels"] == {**labels, "team": "ml"}
    assert result.pod["metadata"]["annotations"] == {
        **annotations, P + "pod-override": json.dumps(fragment), "note": "x",
        P + "applied": "revision=test; annotations:pod-override"}


def test_a_template_never_gives_a_pod_airflows_keys_even_unchecked() -> None:
    # compile refuses such a template; built by hand, the mutation still drops the keys
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: t}
        spec: {template: {spec: {activeDeadlineSeconds: 60}}}
    """)
    [template] = policies.templates
    template = dataclasses.replace(template, template={
        "metadata": {"labels": {"kubernetes_executor": "True", "team": "ml"},
                     "annotations": {"dag_id": "nfs_export", "note": "x"}},
        "spec": {"activeDeadlineSeconds": 60}})
    policies = dataclasses.replace(policies, templates=(template,))
    pod = airflow_pod("airflow3-kpo")  # no annotations at all
    labels = dict(pod["metadata"]["labels"])
    result = mutated(pod, policies)
    assert result.pod["metadata"]["labels"] == {**labels, "team": "ml"}
    assert result.pod["metadata"]["annotations"] == {
        "note": "x", P + "applied": "revision=test; PodTemplate/t"}
    # a pod one of Airflow's accounts wrote with no labels or annotations at all
    template = dataclasses.replace(template, template={
        "metadata": {"annotations": {"dag_id": "nfs_export", "note": "x"}}})
    policies = dataclasses.replace(policies, templates=(template,),
                                   settings=Settings(airflow_accounts=(WORKER,)))
    bare = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "base", "image": "x"}]}}
    result = mutated(bare, policies, username=WORKER)
    assert result.task.unmarked
    assert result.pod["metadata"] == {"name": "p", "annotations": {
        "note": "x", P + "applied": "revision=test; PodTemplate/t"}}


# --- what the hook reports, whichever way the pod goes --------------------------------------------

WORKER = "system:serviceaccount:airflow:airflow-worker"
RESOURCES_OPEN = """
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: OverridePolicy
    metadata: {name: resources}
    spec:
      allowedFields: ["spec.containers[*].resources", "spec.nodeSelector"]
      allowedProfiles: ["*"]
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: small}
    spec:
      resources:
        perContainer: {requests: {cpu: "4", memory: 8Gi}, limits: {cpu: "4", memory: 8Gi}}
        perPod: {requests: {cpu: "2", memory: 8Gi}, limits: {cpu: "4", memory: 8Gi}}
"""
EVERY_CPU = json.dumps({"spec": {"containers": [
    {"name": "*", "resources": {"requests": {"cpu": "1500m"}}}]}})


def test_an_annotation_that_breaks_a_pod_total_is_refused_by_name() -> None:
    # 1500m for each of the two containers: fine for each, 3 CPUs for the pod
    pod = annotate(airflow_pod("airflow3-kpo-xcom"), {P + "pod-override": EVERY_CPU})
    before = json.loads(json.dumps(pod))
    result = mutate_pod(pod, policy_set(RESOURCES_OPEN), "data-airflow")
    assert [(r.annotation, r.field, r.rule) for r in result.refusals] == [
        (P + "pod-override", "spec.resources.requests.cpu", "envelope: resources")]
    assert result.refusals[0].reason.endswith('got "3"')
    assert (result.pod, result.patch, result.task.dag_id) == (before, [], "ml_pipeline")


def test_an_annotation_is_refused_only_for_what_it_broke() -> None:
    # The pod is over the per-pod bound before any annotation: asking for memory is no cause
    # to refuse it (the validating hook judges the total, as for any pod).
    pod = airflow_pod("airflow3-kpo-xcom")
    for c in pod["spec"]["containers"]:
        c["resources"] = {"requests": {"cpu": "1500m"}}
    pod = annotate(pod, {P + "memory": "2Gi"})
    result = mutate_pod(pod, policy_set(RESOURCES_OPEN), "data-airflow")
    assert result.allowed
    assert container(result.pod)["resources"]["requests"] == {"cpu": "1500m", "memory": "2Gi"}


def test_a_node_pool_annotation_names_the_settings_pool_label() -> None:
    policies = policy_set(RESOURCES_OPEN + """
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Settings
    metadata: {name: settings}
    spec: {nodePoolLabel: example.com/pool}
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: pools}
    spec:
      placement: {nodePools: [batch, gpu]}
    """)
    pod = annotate(airflow_pod("airflow3-kpo"), {P + "node-pool": "gpu"})
    result = mutated(pod, policies)
    assert result.allowed and result.pod["spec"]["nodeSelector"] == {"example.com/pool": "gpu"}
    refused = mutate_pod(annotate(airflow_pod("airflow3-kpo"), {P + "node-pool": "system"}),
                         policies, "data-airflow")
    assert [(r.field, r.rule) for r in refused.refusals] == [
        ("spec.nodeSelector[example.com/pool]", "envelope: placement")]


def test_the_applied_annotation_lists_everything_in_order() -> None:
    policies = policy_set(RESOURCES_OPEN + """
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: PodTemplate
    metadata: {name: defaults}
    spec:
      template: {spec: {activeDeadlineSeconds: 7200}}
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Profile
    metadata: {name: urgent}
    spec:
      description: x
      template: {spec: {priorityClassName: urgent}}
    """, revision="abc123")
    pod = annotate(airflow_pod("airflow3-executor"), {
        P + "profiles": "urgent", P + "cpu": "1", P + "memory": "2Gi"})
    result = mutated(pod, policies)
    assert result.applied == ("PodTemplate/defaults", "Profile/urgent", "annotations:cpu,memory")
    assert result.pod["metadata"]["annotations"][P + "applied"] == (
        "revision=abc123; PodTemplate/defaults; Profile/urgent; annotations:cpu,memory")
    assert (result.task.dag_id, result.warnings, result.covered) == ("example_dag", (), True)


def test_a_foreign_pod_is_reported_as_not_covered(bundled) -> None:
    pod = {"metadata": {"name": "web", "namespace": "default", "labels": {"app": "nginx"}},
           "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}
    result = mutate_pod(pod, bundled, "default")
    assert (result.covered, result.pod, result.patch, result.task.pod_type) == (
        False, pod, [], PodType.OTHER)


def test_a_pod_an_airflow_account_wrote_without_markers_gets_the_defaults(bundled) -> None:
    pod = {"metadata": {"name": "p", "labels": {"app": "x"}},
           "spec": {"containers": [{"name": "base", "image": "python:3.12"}]}}
    result = mutated(pod, bundled, username=WORKER)
    assert result.covered and result.task.unmarked
    assert result.pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert mutate_pod(pod, bundled, "data-airflow").covered is False  # anyone else's


def test_a_worker_creating_an_executor_pod_gets_no_profiles(bundled) -> None:
    # The worker is trusted with the KPO pods it launches, not with the scheduler's pods.
    pod = annotate(airflow_pod("airflow3-executor"), {P + "profiles": "highmem"})
    result = mutated(pod, bundled, username=WORKER)
    assert "Profile/highmem" not in result.applied
    assert result.warnings == (
        f"{WORKER} is not a trusted creator of Airflow pods in namespace data-airflow: "
        "profiles, task policies and override annotations were not applied",)
    kpo = annotate(airflow_pod("airflow3-kpo"), {P + "profiles": "highmem"})
    assert "Profile/highmem" in mutated(kpo, bundled, username=WORKER).applied


@pytest.mark.parametrize("call", ["request", "pod"])
def test_policies_scoped_to_a_namespace_read_the_requests_namespace(call) -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: data}
        spec:
          match: {namespaces: [data-airflow]}
          template: {spec: {activeDeadlineSeconds: 60}}
    """)
    pod = airflow_pod("airflow3-kpo")
    if call == "request":  # kube-apiserver names the namespace; the pod body need not
        del pod["metadata"]["namespace"]
        result = mutate_pod(pod, policies, "data-airflow")
    else:  # without one, the pod's own
        result = mutate_pod(pod, policies)
    assert (result.task.namespace, result.pod["spec"]["activeDeadlineSeconds"]) == (
        "data-airflow", 60)


def test_a_malformed_annotation_is_refused_with_the_pod_unchanged(bundled) -> None:
    pod = annotate(airflow_pod("airflow3-executor"), {P + "cpu": "lots", P + "memory": "-1"})
    before = json.loads(json.dumps(pod))
    result = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert (result.pod, result.patch, result.task.task_id) == (before, [], "extract")
    assert [r.annotation for r in result.refusals] == [P + "cpu", P + "memory"]
    assert result.malformed


def test_a_malformed_pod_is_reported_unmutated(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["initContainers"] = {"git-sync": {}}
    result = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert (result.pod, result.patch, result.task.dag_id) == (pod, [], "example_dag")
    assert result.warnings == ("pod not mutated: spec.initContainers is not a list of "
                               "containers",)


@pytest.mark.parametrize("pod, problem", [
    ("a pod", "the object is not a map"),
    ({"metadata": "x"}, "metadata is not a map"),
    ({"metadata": {"labels": "x"}}, "metadata.labels is not a map"),
    ({"metadata": {"annotations": ["x"]}}, "metadata.annotations is not a map"),
    ({"spec": []}, "spec is not a map"),
    ({"spec": {"initContainers": None}}, "spec.initContainers is not a list of containers"),
    ({"spec": {"containers": ["base"]}}, "spec.containers is not a list of containers"),
    ({"spec": {"ephemeralContainers": {}}},
     "spec.ephemeralContainers is not a list of containers"),
    ({}, None),
    ({"metadata": {}, "spec": {"containers": [{}], "initContainers": []}}, None),
])
def test_what_is_not_shaped_like_a_pod_is_named(pod, problem) -> None:
    assert malformed_shape(pod) == problem


# --- defaults for every container, locks --------------------------------------------------------


EVERY_CONTAINER = """
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: PodTemplate
    metadata: {name: every-container}
    spec:
      template:
        spec:
          containers: [{name: "*", securityContext: {allowPrivilegeEscalation: false}}]
          initContainers: [{name: "*", securityContext: {allowPrivilegeEscalation: false}}]
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: OverridePolicy
    metadata: {name: sidecars}
    spec:
      allowedFields: [spec.containers, spec.initContainers]
"""


@pytest.mark.parametrize("kind", ["containers", "initContainers"])
def test_a_container_an_annotation_adds_gets_the_defaults_for_every_container(kind) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["initContainers"] = [{"name": "fetch", "image": "busybox"}]
    pod = annotate(pod, {P + "pod-override": json.dumps(
        {"spec": {kind: [{"name": "tracer", "image": "otel/collector:1"}]}})})
    result = mutated(pod, policy_set(EVERY_CONTAINER))
    assert [c["name"] for c in result.pod["spec"][kind]][-1] == "tracer"
    for c in (*result.pod["spec"]["containers"], *result.pod["spec"]["initContainers"]):
        assert c["securityContext"] == {"allowPrivilegeEscalation": False}, c["name"]


def test_a_locked_field_the_template_leaves_unset_is_removed() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: no-host-network}
        spec:
          template: {spec: {}}
          lockedFields: [spec.hostNetwork]
    """)
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["hostNetwork"] = True
    assert "hostNetwork" not in mutated(pod, policies).pod["spec"]


def test_a_lock_on_every_container_takes_the_templates_star_entry() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: locked}
        spec:
          template:
            spec:
              containers:
                - {name: base, securityContext: {readOnlyRootFilesystem: false}}
                - {name: "*", securityContext: {readOnlyRootFilesystem: true}}
          lockedFields: ["spec.containers[*].securityContext.readOnlyRootFilesystem"]
    """)
    result = mutated(airflow_pod("airflow3-kpo-xcom"), policies)
    assert [c["securityContext"]["readOnlyRootFilesystem"]
            for c in result.pod["spec"]["containers"]] == [True, True]


def test_editing_a_mutated_pod_never_changes_the_policy() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: seccomp}
        spec:
          template: {spec: {securityContext: {seccompProfile: {type: RuntimeDefault}}}}
          lockedFields: [spec.securityContext]
    """)
    first = mutate_pod(airflow_pod("airflow3-kpo"), policies).pod
    first["spec"]["securityContext"]["seccompProfile"]["type"] = "Unconfined"
    second = mutate_pod(airflow_pod("airflow3-kpo"), policies).pod
    assert second["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
