"""Issue 15, "bounds that hold only on one path": each attack as a DAG author writes it
(a pod_override fragment, KubernetesPodOperator arguments or override annotations), through
both hooks with the bundled policies, ending in a denial that names the envelope rule.

`as_airflow_builds` stands in for Airflow merging a pod_override into the worker pod (or KPO
building its pod from arguments); `as_api_server_sends` adds what kube-apiserver's built-in
plugins add before any webhook (the DefaultTolerationSeconds tolerations), so the attacks
are judged on the pod the hooks really see.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonpatch
import pytest

from tests.support.paths import POLICIES
from tests.support.pods import DEFAULT_TOLERATIONS, airflow_pod
from tests.support.policies import policy_set
from webhook.audit.judge import audit_pod
from webhook.mutation.merge import merge_pod
from webhook.mutation.mutate import MutationResult, mutate_pod
from webhook.policy.model import PolicySet
from webhook.validation.validate import ValidationResult, validate_pod

NS = "data-airflow"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
P = "airflow-pod-webhook.io/"


def as_airflow_builds(fixture: str, pod_override: dict | None = None,
                      annotations: dict | None = None) -> dict:
    pod = airflow_pod(fixture)
    if pod_override:
        pod = merge_pod(pod, pod_override)
    if annotations:
        pod["metadata"].setdefault("annotations", {}).update(annotations)
    return pod


def as_api_server_sends(pod: dict) -> dict:
    pod["spec"]["tolerations"] = [*(pod["spec"].get("tolerations") or []),
                                  *DEFAULT_TOLERATIONS]
    return pod


def admit(pod: dict, policies: PolicySet) -> tuple[MutationResult, ValidationResult | None]:
    """Both hooks in kube-apiserver's order: mutate, apply the patch, validate the result."""
    pod = as_api_server_sends(pod)
    mutation = mutate_pod(pod, policies, NS, SCHEDULER)
    # `audit` must give every attack the hooks' verdict.
    audit = audit_pod({**pod, "metadata": {**pod["metadata"], "namespace": NS}}, policies)
    if not mutation.allowed:
        assert audit.decision == "deny" and audit.refusals
        return mutation, None
    final = jsonpatch.apply_patch(pod, mutation.patch)
    validation = validate_pod(final, policies, NS, SCHEDULER)
    assert (audit.decision == "deny") is (not validation.allowed), audit
    return mutation, validation


def denied(pod: dict, policies: PolicySet) -> ValidationResult:
    mutation, validation = admit(pod, policies)
    assert mutation.allowed, [r.message for r in mutation.refusals]
    assert validation is not None and not validation.allowed
    assert validation.code == 403
    return validation


def enforced(result: ValidationResult) -> tuple[str, ...]:
    """The rules that deny (the bundled policies also warn on restricted and hygiene rules)."""
    return tuple(sorted({v.rule for v in result.violations["enforce"]}))


def refused(pod: dict, policies: PolicySet) -> list[str]:
    mutation, _ = admit(pod, policies)
    assert not mutation.allowed and not mutation.malformed
    return [r.message for r in mutation.refusals]


def test_node_name_and_tolerate_all(bundled):
    pod = as_airflow_builds("airflow2-executor", {"spec": {
        "nodeName": "gpu-node-7", "tolerations": [{"operator": "Exists"}]}})
    result = denied(pod, bundled)
    assert enforced(result) == ("envelope: placement",)
    assert result.message == (
        "pod example-dag-extract-x1y2z3w4 (dag_id=example_dag, task_id=extract) violates 1 "
        'rule(s): spec.nodeName must not be set: it bypasses the scheduler and every taint '
        '(pick a node pool instead), got "gpu-node-7" (envelope: placement); '
        'spec.tolerations[0] must name a taint key: a key-less toleration tolerates every '
        'taint, got {"operator":"Exists"} (envelope: placement)')


REFUSED_POOL = {"key": "node-pool", "operator": "In", "values": ["system"]}
AFFINITY = {"affinity": {"nodeAffinity": {
    "requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [REFUSED_POOL]}]}}}}


def test_affinity_requiring_a_refused_pool_in_a_kpo_spec(bundled):
    pod = as_airflow_builds("airflow3-kpo", {"spec": AFFINITY})
    result = denied(pod, bundled)
    assert ('spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.'
            'nodeSelectorTerms[0].matchExpressions[0] must name only allowed node pools '
            '(default, highmem, gpu, spot), got {"key":"node-pool","operator":"In",'
            '"values":["system"]} (envelope: placement)') in result.message


def test_affinity_requiring_a_refused_pool_in_an_annotation(bundled):
    pod = as_airflow_builds("airflow3-executor", annotations={
        P + "pod-override": json.dumps({"spec": AFFINITY})})
    assert refused(pod, bundled) == [
        "annotation airflow-pod-webhook.io/pod-override: spec.affinity.nodeAffinity."
        "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]."
        "matchExpressions[0]: must name only allowed node pools (default, highmem, gpu, "
        'spot), got {"key":"node-pool","operator":"In","values":["system"]} '
        "(envelope: placement)"]


@pytest.fixture(scope="module")
def pool_required() -> PolicySet:
    """The bundled policies as an admin who requires a pool writes them: the Envelope
    requires one and the cluster template pins pods to the default pool."""
    texts = []
    for path in sorted(Path(POLICIES).glob("*.yaml")):
        text = path.read_text()
        text = text.replace("requireNodePool: false", "requireNodePool: true")
        text = text.replace("""    spec:
      securityContext:
        seccompProfile:
          type: RuntimeDefault
""", """    spec:
      nodeSelector:
        node-pool: default
      securityContext:
        seccompProfile:
          type: RuntimeDefault
""")
        texts.append(text)
    policies = policy_set("\n---\n".join(texts))
    assert policies.envelopes[0].placement.require_node_pool
    return policies


def test_node_selector_null_cannot_drop_a_profiles_pin(pool_required):
    pod = as_airflow_builds("airflow3-executor", annotations={
        P + "profiles": "highmem",
        P + "pod-override": json.dumps({"spec": {"nodeSelector": None}})})
    assert refused(pod, pool_required) == [
        "annotation airflow-pod-webhook.io/pod-override: spec.nodeSelector: must not be "
        "removed: the pod must stay pinned to a node pool (Envelope/airflow requireNodePool),"
        " got <unset> (envelope: placement)"]
    # Without the null, the profile's pin holds and the pod is admitted on highmem.
    pod = as_airflow_builds("airflow3-executor", annotations={P + "profiles": "highmem"})
    mutation, validation = admit(pod, pool_required)
    assert validation is not None and validation.allowed
    assert mutation.pod["spec"]["nodeSelector"] == {"node-pool": "highmem"}


def test_an_unpinned_pod_reaching_the_validating_hook_is_denied(pool_required):
    # E.g. the mutating hook was unreachable (failurePolicy Ignore): no pin, no locks.
    pod = as_api_server_sends(as_airflow_builds("airflow3-executor", {"spec": {
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}}))
    result = validate_pod(pod, pool_required, NS, SCHEDULER)
    assert not result.allowed
    assert ("spec.nodeSelector.node-pool must pin the pod to an allowed node pool (default, "
            "highmem, gpu, spot), by nodeSelector or required node affinity (Envelope/airflow "
            "requireNodePool), got <unset> (envelope: placement)") in result.message


@pytest.mark.parametrize(("resource", "quantity"), [
    ("hugepages-1Gi", "4Gi"), ("amd.com/gpu", "2"), ("nvidia.com/mig-1g.5gb", "7"),
    ("gpu.intel.com/i915", "1")])
def test_resource_names_the_envelope_does_not_list(bundled, resource, quantity):
    pod = as_airflow_builds("airflow2-executor", {"spec": {"containers": [
        {"name": "base", "resources": {"limits": {resource: quantity},
                                       "requests": {resource: quantity}}}]}})
    result = denied(pod, bundled)
    assert enforced(result) == ("envelope: resources",)
    key = f"[{resource}]" if "/" in resource or "." in resource else f".{resource}"
    assert (f"spec.containers[base].resources.limits{key} must not be set: Envelope/airflow "
            "bounds no such resource in limits (listed: cpu, ephemeral-storage, memory, "
            f'nvidia.com/gpu), got "{quantity}" (envelope: resources)') in result.message


@pytest.mark.parametrize("claim", [
    {"name": "gpus", "resourceClaimTemplateName": "eight-a100"},
    {"name": "gpus", "resourceClaimName": "shared-gpu-pool"}])
def test_devices_claimed_through_dynamic_resource_allocation(bundled, claim):
    # DRA devices bypass requests and limits: the bundled envelope lists no claim templates.
    pod = as_airflow_builds("airflow3-kpo")
    pod["spec"]["resourceClaims"] = [claim]
    pod["spec"]["containers"][0]["resources"] = {"claims": [{"name": "gpus"}]}
    result = denied(pod, bundled)
    assert enforced(result) == ("envelope: resources",)
    field, value = next((k, v) for k, v in claim.items() if k != "name")
    assert (f"spec.resourceClaims[gpus].{field} must name an allowed ResourceClaimTemplate "
            f'(Envelope/airflow resources.claimTemplates: none), got "{value}" '
            "(envelope: resources)") in result.message


STAR = {"spec": {"containers": [{"name": "*", "resources": {
    "requests": {"cpu": "16", "memory": "64Gi"}, "limits": {"cpu": "16", "memory": "64Gi"}}}]}}


def test_star_container_entry_times_many_containers(bundled):
    pod = as_airflow_builds("airflow3-kpo-xcom", annotations={
        P + "pod-override": json.dumps(STAR)})
    assert refused(pod, bundled) == [
        "annotation airflow-pod-webhook.io/pod-override: spec.resources.limits.cpu: must total "
        "at most 20 for the pod (Envelope/airflow perPod; Kubernetes counts the sum of "
        "containers and sidecars, or the largest init container if more), got \"32\" "
        "(envelope: resources)",
        "annotation airflow-pod-webhook.io/pod-override: spec.resources.limits.memory: must "
        "total at most 80Gi for the pod (Envelope/airflow perPod; Kubernetes counts the sum of "
        "containers and sidecars, or the largest init container if more), got \"128Gi\" "
        "(envelope: resources)",
        "annotation airflow-pod-webhook.io/pod-override: spec.resources.requests.cpu: must "
        "total at most 20 for the pod (Envelope/airflow perPod; Kubernetes counts the sum of "
        "containers and sidecars, or the largest init container if more), got \"32\" "
        "(envelope: resources)",
        "annotation airflow-pod-webhook.io/pod-override: spec.resources.requests.memory: must "
        "total at most 80Gi for the pod (Envelope/airflow perPod; Kubernetes counts the sum of "
        "containers and sidecars, or the largest init container if more), got \"128Gi\" "
        "(envelope: resources)"]


def test_every_container_at_the_maximum_in_a_kpo_spec(bundled):
    at_max = {"requests": {"cpu": "16", "memory": "64Gi"},
              "limits": {"cpu": "16", "memory": "64Gi"}}
    pod = as_airflow_builds("airflow3-kpo")
    pod["spec"]["containers"][0]["resources"] = at_max
    pod["spec"]["containers"] += [{"name": f"helper-{i}", "image": "busybox:1.36",
                                   "resources": at_max} for i in range(3)]
    result = denied(pod, bundled)
    assert enforced(result) == ("envelope: resources",)
    assert ("spec.resources.requests.cpu must total at most 20 for the pod (Envelope/airflow "
            "perPod; Kubernetes counts the sum of containers and sidecars, or the largest init "
            'container if more), got "64" (envelope: resources)') in result.message


def test_hundreds_of_cpus_in_an_init_container(bundled):
    pod = as_airflow_builds("airflow3-kpo", {"spec": {"initContainers": [
        {"name": "warm-cache", "image": "busybox:1.36",
         "resources": {"requests": {"cpu": "400"}, "limits": {"cpu": "400"}}}]}})
    result = denied(pod, bundled)
    assert ('spec.initContainers[warm-cache].resources.requests.cpu must be at most 16 '
            '(Envelope/airflow perContainer), got "400" (envelope: resources)'
            ) in result.message
    assert ('spec.resources.requests.cpu must total at most 20 for the pod (Envelope/airflow '
            'perPod; Kubernetes counts the sum of containers and sidecars, or the largest init '
            'container if more), got "400" (envelope: resources)') in result.message


@pytest.mark.parametrize("field", ["serviceAccountName", "serviceAccount"])
def test_service_account_switched_to_the_schedulers(bundled, field):
    pod = as_airflow_builds("airflow2-executor", {"spec": {field: "airflow-scheduler"}})
    result = denied(pod, bundled)
    assert (f'spec.{field} is forbidden (*scheduler*) (Envelope/airflow serviceAccountNames), '
            'got "airflow-scheduler" (envelope: serviceAccountNames)') in result.message


def test_priority_class_system_node_critical(bundled):
    pod = as_airflow_builds("airflow3-kpo", {"spec": {"priorityClassName":
                                                      "system-node-critical"}})
    result = denied(pod, bundled)
    assert enforced(result) == ("envelope: priorityClassNames",)
    assert ('spec.priorityClassName must be one of airflow-* (Envelope/airflow '
            'priorityClassNames), got "system-node-critical" (envelope: priorityClassNames)'
            ) in result.message
    # The same through the annotation allowlist (spec.priorityClassName is allowed there):
    # refused by the mutating hook from the very same list, naming the annotation.
    pod = as_airflow_builds("airflow3-executor", annotations={
        P + "pod-override": '{"spec": {"priorityClassName": "system-node-critical"}}'})
    assert refused(pod, bundled) == [
        "annotation airflow-pod-webhook.io/pod-override: spec.priorityClassName: must be one of "
        "airflow-* (Envelope/airflow priorityClassNames), got \"system-node-critical\" "
        "(envelope: priorityClassNames)"]


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("schedulerName", "my-scheduler", "envelope: schedulerNames"),
    ("runtimeClassName", "runc-privileged", "envelope: runtimeClassNames")])
def test_any_scheduler_or_runtime_class(bundled, field, value, rule):
    pod = as_airflow_builds("airflow3-kpo", {"spec": {field: value}})
    result = denied(pod, bundled)
    assert enforced(result) == (rule,)
    assert f'spec.{field} must be one of' in result.message and f'"{value}" ({rule})' in (
        result.message)


def test_container_level_override_of_a_locked_pod_level_field(bundled):
    pod = as_airflow_builds("airflow2-executor", {"spec": {"containers": [
        {"name": "base", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}]}})
    result = denied(pod, bundled)
    assert "envelope: lockedFields" in enforced(result)
    assert ('spec.containers[base].securityContext.seccompProfile must be '
            '{"type": "RuntimeDefault"}, as the locked pod-level setting (locked by '
            'PodTemplate/airflow-defaults spec.securityContext.seccompProfile), got '
            '{"type":"Unconfined"} (envelope: lockedFields)') in result.message


def test_an_exemption_can_name_an_envelope_rule():
    policies = policy_set(Path(POLICIES, "45-envelope.yaml").read_text() + """
---
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Exemption
metadata: {name: ml-runtime}
spec:
  match: {namespaces: [data-airflow]}
  reason: gVisor trial (PLAT-99)
  rules: ["envelope: runtimeClassNames"]
""")
    pod = as_api_server_sends(as_airflow_builds("airflow3-kpo", {"spec": {
        "runtimeClassName": "gvisor",
        "containers": [{"name": "base", "resources": {"limits": {"memory": "1Gi"}}}]}}))
    result = validate_pod(pod, policies, NS, SCHEDULER)
    assert result.allowed and result.exempted == ("ml-runtime",)
    pod["spec"]["schedulerName"] = "other"
    assert validate_pod(pod, policies, NS, SCHEDULER).rules_violated == (
        "envelope: schedulerNames",)
