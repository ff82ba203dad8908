"""Every pod real Airflow builds (tests/fixtures/airflow-pods: Airflow 2 and 3, executor and
KPO, with and without the XCom sidecar and pod_override) created through a real kube-apiserver:
admitted, and stored exactly as the offline core (`airflow-pod-webhook mutate`) predicts, up to
what the API server itself adds (tests/e2e/pod_compare.py); Airflow's labels and annotations
leave as they came. Plus the two other ways pods arrive: `kubectl create --dry-run=server`
and `generateName`."""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import E2EEnvironment, api_message, e2e_pod
from tests.e2e.pod_compare import comparable, differences, server_defaulted
from tests.e2e.scenarios import APPLIED, MUTATED, Scenario, build_pod, scheduler_username
from tests.support.paths import AIRFLOW_PODS
from webhook.mutation.mutate import mutate_pod
from webhook.policy.model import PolicySet

pytestmark = pytest.mark.e2e

FIXTURES = sorted(p.stem for p in AIRFLOW_PODS.glob("*.json"))


def test_the_fixture_list_is_the_whole_folder() -> None:
    # Airflow 2 and 3, executor (plain and pod_override) and KPO (plain and XCom sidecar).
    assert {"airflow2-executor", "airflow2-executor-pod-override", "airflow3-executor",
            "airflow3-executor-pod-override", "airflow3-kpo", "airflow3-kpo-xcom"} <= set(FIXTURES)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_airflow_pod_is_stored_as_the_offline_core_predicts(
        e2e: E2EEnvironment, namespace: str, e2e_policy_set: PolicySet, fixture: str) -> None:
    pod = build_pod(Scenario(fixture, fixture, MUTATED), namespace)
    user = scheduler_username(namespace)
    predicted = mutate_pod(json.loads(json.dumps(pod)), e2e_policy_set, namespace, user)
    assert predicted.allowed and predicted.patch, f"offline: {predicted.refusals}"
    try:
        created = e2e.create_pod(pod, user)
    finally:
        e2e.delete_pod(namespace, fixture)
    expected = server_defaulted(e2e.core(), predicted.pod)

    assert differences(comparable(created), comparable(expected)) == []
    # Airflow's own metadata, every key and value, as Airflow wrote it.
    for part in ("labels", "annotations"):
        written = pod["metadata"].get(part) or {}
        stored = created["metadata"].get(part) or {}
        assert {k: stored.get(k) for k in written} == written, part
    added = set(created["metadata"]["annotations"]) - set(pod["metadata"].get("annotations") or {})
    assert added == {APPLIED}


def test_kubectl_create_dry_run_server_is_mutated_and_nothing_is_stored(
        e2e: E2EEnvironment, namespace: str) -> None:
    pod = e2e_pod("executor-template-and-profile", namespace, "kubectl-dry-run")
    result = e2e.kubectl("create", "--dry-run=server", "--validate=false", "-o", "json",
                         f"--as={scheduler_username(namespace)}", "-f", "-",
                         input_text=json.dumps(pod))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert APPLIED in shown["metadata"]["annotations"]
    assert shown["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    missing = e2e.kubectl("-n", namespace, "get", "pod", "kubectl-dry-run", "-o", "name")
    assert missing.returncode != 0 and "NotFound" in missing.stderr

    privileged = e2e_pod("privileged-pod", namespace, "kubectl-dry-run-privileged")
    refused = e2e.kubectl("create", "--dry-run=server", "--validate=false",
                          f"--as={scheduler_username(namespace)}", "-f", "-",
                          input_text=json.dumps(privileged))
    assert refused.returncode != 0
    assert 'admission webhook "validate.airflow-pod-webhook.io" denied' in refused.stderr


def test_generate_name_pod_is_mutated(e2e: E2EEnvironment, namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException

    pod = e2e_pod("executor-template-and-profile", namespace, "unused")
    del pod["metadata"]["name"]
    pod["metadata"]["generateName"] = "example-dag-task-"
    try:
        created = e2e.create_pod(pod, scheduler_username(namespace))
    except ApiException as exc:
        raise AssertionError(api_message(exc)) from exc
    name = created["metadata"]["name"]
    e2e.delete_pod(namespace, name)
    assert name.startswith("example-dag-task-") and len(name) > len("example-dag-task-")
    assert APPLIED in created["metadata"]["annotations"]
    assert created["spec"]["nodeSelector"] == {"node-pool": "spot"}
