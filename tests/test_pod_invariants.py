"""webhook/mutation/pod_invariants.py: what the mutation takes back so that kube-apiserver,
which validates the mutated pod before any validating webhook, never answers a DAG author's pod
with a confusing 422, and what the built-in admission plugins derived before the webhook ran.
"""

from __future__ import annotations

import json

from tests.conftest import airflow_pod, policy_set
from tests.e2e.security_scenarios import PRIORITY_CLASS
from webhook.mutation.mutate import mutate_pod

P = "airflow-pod-webhook.io/"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"


# --- the built-in plugins around the webhook -----------------------------------------------------


def _as_apiserver_admits(pod: dict) -> dict:
    """What the Priority plugin wrote before any webhook ran (no class: priority 0)."""
    pod["spec"]["priority"] = 0
    pod["spec"]["preemptionPolicy"] = "PreemptLowerPriority"
    return pod


def test_a_priority_class_from_an_annotation_lets_the_plugin_recompute(bundled) -> None:
    pod = _as_apiserver_admits(airflow_pod("airflow3-executor"))
    pod["metadata"]["annotations"][P + "pod-override"] = json.dumps(
        {"spec": {"priorityClassName": PRIORITY_CLASS}})
    result = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert result.allowed
    assert {"op": "remove", "path": "/spec/priority"} in result.patch
    assert {"op": "remove", "path": "/spec/preemptionPolicy"} in result.patch
    assert result.pod["spec"]["priorityClassName"] == PRIORITY_CLASS


def test_a_priority_class_from_a_profile_lets_the_plugin_recompute() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Profile
        metadata: {name: urgent}
        spec:
          description: test
          template: {spec: {priorityClassName: airflow-urgent}}
    """)
    pod = _as_apiserver_admits(airflow_pod("airflow3-kpo"))
    pod["metadata"]["annotations"] = {P + "profiles": "urgent"}
    spec = mutate_pod(pod, policies, "data-airflow").pod["spec"]
    assert spec["priorityClassName"] == "airflow-urgent"
    assert "priority" not in spec and "preemptionPolicy" not in spec


def test_an_unchanged_priority_class_keeps_what_the_plugin_computed(bundled) -> None:
    pod = _as_apiserver_admits(airflow_pod("airflow3-executor"))
    pod["spec"]["priorityClassName"] = "airflow-batch"
    pod["spec"]["priority"] = 1000
    pod["metadata"]["annotations"][P + "memory"] = "1Gi"
    result = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert result.pod["spec"]["priority"] == 1000
    assert not [op for op in result.patch if "priority" in op["path"].lower()]


def test_a_changed_runtime_class_drops_the_overhead_its_plugin_set() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: sandboxed}
        spec:
          template: {spec: {runtimeClassName: gvisor}}
          lockedFields: [spec.runtimeClassName]
    """)
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["runtimeClassName"] = "runc"
    pod["spec"]["overhead"] = {"cpu": "10m"}
    spec = mutate_pod(pod, policies, "data-airflow").pod["spec"]
    assert spec["runtimeClassName"] == "gvisor" and "overhead" not in spec


def test_default_tolerations_from_the_apiserver_survive_a_profile(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    defaults = [{"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300} for k in ("not-ready", "unreachable")]
    pod["spec"]["tolerations"] = list(defaults)
    pod["metadata"]["annotations"][P + "profiles"] = "spot"
    tolerations = mutate_pod(pod, bundled, "data-airflow", SCHEDULER).pod["spec"]["tolerations"]
    assert tolerations[:2] == defaults and tolerations[2]["key"] == "spot"


def _with_token_volume(pod: dict) -> dict:
    """What the ServiceAccount plugin adds before any webhook runs."""
    pod["spec"].setdefault("volumes", []).append({"name": "kube-api-access-x7k2q", "projected": {
        "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt"}}]}})
    for c in pod["spec"]["containers"]:
        c.setdefault("volumeMounts", []).append({
            "name": "kube-api-access-x7k2q", "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
    return pod


def test_turning_automount_off_takes_back_the_token_the_plugin_mounted() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: no-token}
        spec:
          template: {spec: {automountServiceAccountToken: false}}
          lockedFields: [spec.automountServiceAccountToken]
    """)
    pod = _with_token_volume(airflow_pod("airflow3-kpo-xcom"))
    spec = mutate_pod(pod, policies, "data-airflow").pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert not [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    assert [v["name"] for v in spec["volumes"]] == ["xcom"]
    for c in spec["containers"]:
        assert not [m for m in c.get("volumeMounts", []) if m["name"].startswith("kube-api")]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "xcom",
                                                       "mountPath": "/airflow/xcom"}]


def test_the_token_volume_stays_when_automount_is_untouched(bundled) -> None:
    pod = _with_token_volume(airflow_pod("airflow3-executor"))
    pod["metadata"]["annotations"][P + "memory"] = "1Gi"
    spec = mutate_pod(pod, bundled, "data-airflow", SCHEDULER).pod["spec"]
    assert "kube-api-access-x7k2q" in [v["name"] for v in spec["volumes"]]
