"""The chart's API Priority and Fairness objects on a real kube-apiserver: it accepts them, and
classifies pod creates by an Airflow release's worker, triggerer and dag-processor with the
task accounts' FlowSchema, while the scheduler's executor pods and the worker's reads keep
their default level. kube-apiserver names the FlowSchema of every request in a response header
(X-Kubernetes-PF-FlowSchema-UID), set before authorization, so the check needs no RBAC."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import E2EEnvironment, e2e_pod
from tests.e2e.namespaces import new_namespace
from tests.support.helm_chart import IMAGE_VALUES, render

helm_python = pytest.importorskip("helm_python", reason="pip install helm-python-sdk ([test])")
pytestmark = pytest.mark.e2e
HEADER = "X-Kubernetes-PF-FlowSchema-UID"


def flow_schema_of(e2e: E2EEnvironment, user: str, call: str, namespace: str) -> str:
    """The UID of the FlowSchema kube-apiserver classified `user`'s request with."""
    from kubernetes.client.rest import ApiException

    core = e2e.core(impersonate=user)
    try:
        if call == "create":
            pod = e2e_pod("executor-template-and-profile", namespace, "apf-probe")
            response = core.create_namespaced_pod(namespace, pod, dry_run="All",
                                                  _preload_content=False)
        else:
            response = core.list_namespaced_pod(namespace, _preload_content=False)
        return response.headers.get(HEADER, "")
    except ApiException as exc:  # e.g. 403: classification came first
        return (exc.headers or {}).get(HEADER, "")


@pytest.fixture(scope="module")
def task_schema(e2e: E2EEnvironment) -> Iterator[tuple[str, str]]:
    """The chart's objects for release `airflow` in a fresh namespace: (namespace, the
    FlowSchema's UID)."""
    from kubernetes import client

    namespace = new_namespace(e2e, "airflow-apf")
    objects = [o for o in render({**IMAGE_VALUES, "airflow": {"releases": [
        {"release": "airflow", "namespace": namespace}]}}, release="apf")
        if o["apiVersion"].startswith("flowcontrol.apiserver.k8s.io/")]
    assert [o["kind"] for o in objects] == ["PriorityLevelConfiguration", "FlowSchema"]
    level, schema = objects
    # Not the name the suite's other tests might install: this module's own.
    for obj in objects:
        obj["metadata"]["name"] = f"{namespace}-tasks"
    schema["spec"]["priorityLevelConfiguration"]["name"] = level["metadata"]["name"]
    api = client.FlowcontrolApiserverV1Api(e2e.api_client())
    api.create_priority_level_configuration(level)
    uid = api.create_flow_schema(schema).metadata.uid
    try:
        worker = f"system:serviceaccount:{namespace}:airflow-worker"
        deadline = time.monotonic() + 60
        while flow_schema_of(e2e, worker, "create", namespace) != uid:
            assert time.monotonic() < deadline, "the FlowSchema never took effect"
            time.sleep(0.5)
        yield namespace, uid
    finally:
        api.delete_flow_schema(schema["metadata"]["name"])
        api.delete_priority_level_configuration(level["metadata"]["name"])


def schema_names(e2e: E2EEnvironment) -> dict[str, str]:
    from kubernetes import client

    data: Any = client.FlowcontrolApiserverV1Api(e2e.api_client()).list_flow_schema(
        _preload_content=False).data
    return {item["metadata"]["uid"]: item["metadata"]["name"]
            for item in json.loads(data)["items"]}


@pytest.mark.parametrize("account", ["airflow-worker", "airflow-triggerer",
                                     "airflow-dag-processor"])
def test_pod_creates_by_the_task_accounts_go_to_their_own_level(
        e2e: E2EEnvironment, task_schema: tuple[str, str], account: str) -> None:
    namespace, uid = task_schema
    user = f"system:serviceaccount:{namespace}:{account}"
    assert flow_schema_of(e2e, user, "create", namespace) == uid


@pytest.mark.parametrize(("account", "verb"), [
    ("airflow-scheduler", "create"),  # the scheduler's executor pods
    ("airflow-worker", "list"),  # the workers' reads
])
def test_what_is_not_a_tasks_pod_write_keeps_the_default_level(
        e2e: E2EEnvironment, task_schema: tuple[str, str], account: str, verb: str) -> None:
    namespace, _ = task_schema
    user = f"system:serviceaccount:{namespace}:{account}"
    classified = flow_schema_of(e2e, user, verb, namespace)
    assert schema_names(e2e)[classified] == "service-accounts"


def test_another_releases_worker_is_not_selected(
        e2e: E2EEnvironment, task_schema: tuple[str, str]) -> None:
    namespace, uid = task_schema
    user = "system:serviceaccount:other-team:airflow-worker"
    classified = flow_schema_of(e2e, user, "create", namespace)
    assert classified != uid and schema_names(e2e)[classified] == "service-accounts"
