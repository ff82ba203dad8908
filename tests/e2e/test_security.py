"""Issue 15's attacks through a real kube-apiserver with both webhooks registered.

Each attack (tests/e2e/security_scenarios.py) is created as the ServiceAccount a DAG author
would use: the scheduler's (pod_override reaches it) or a worker's (any task holds its token).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.e2e.harness import E2EEnvironment, api_message
from tests.e2e.scenarios import denial_prefix
from tests.e2e.security_scenarios import (
    ATTACKS,
    DENIED,
    LEGACY_NAMESPACE,
    PRIORITY_CLASS,
    PRIORITY_VALUE,
    WORKER_SA,
    Attack,
    attack_pod,
    check_admitted,
    check_denied,
    namespace_for,
    username,
)

pytestmark = pytest.mark.e2e


def _let_workers_create_pods(e2e: E2EEnvironment, namespace: str) -> None:
    """KubernetesPodOperator needs it: bind the worker to the harness's pod-creating Role."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(e2e.api_client())
    with contextlib.suppress(client.exceptions.ApiException):  # already bound
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": "airflow-worker-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "airflow-scheduler-pods"},
            "subjects": [{"kind": "ServiceAccount", "name": WORKER_SA,
                          "namespace": namespace}]}, _preload_content=False)


@pytest.fixture(scope="module")
def attack_namespaces(e2e: E2EEnvironment, namespace: str) -> Iterator[str]:
    """The test namespace and LEGACY_NAMESPACE (the bundled Exemption's), workers allowed to
    create pods in both, and the PriorityClass a task may ask for."""
    from kubernetes import client

    with contextlib.suppress(client.exceptions.ApiException):  # a reused cluster has it
        e2e.create_namespace(LEGACY_NAMESPACE)
    for name in (namespace, LEGACY_NAMESPACE):
        _let_workers_create_pods(e2e, name)
    scheduling = client.SchedulingV1Api(e2e.api_client())
    with contextlib.suppress(client.exceptions.ApiException):
        scheduling.create_priority_class({
            "metadata": {"name": PRIORITY_CLASS}, "value": PRIORITY_VALUE,
            "description": "airflow-pod-webhook e2e"}, _preload_content=False)
    try:
        yield namespace
    finally:
        with contextlib.suppress(client.exceptions.ApiException):
            scheduling.delete_priority_class(PRIORITY_CLASS, _preload_content=False)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(e2e: E2EEnvironment, attack_namespaces: str, attack: Attack) -> None:
    from kubernetes.client.exceptions import ApiException

    where = namespace_for(attack, attack_namespaces)
    pod = attack_pod(attack, where)
    try:
        if attack.outcome == DENIED:
            with pytest.raises(ApiException) as raised:
                e2e.create_pod(pod, username(attack, where))
            message = api_message(raised.value)
            assert raised.value.status == attack.status, message
            assert message.startswith(denial_prefix(attack.denied_by)), message
            assert check_denied(message, attack) == [], message
            return
        created = e2e.create_pod(pod, username(attack, where))
        assert check_admitted(created, attack) == []
    finally:
        e2e.delete_pod(where, attack.name)
