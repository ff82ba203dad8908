"""Issue 15's "bounds that hold only on one path", through a real kube-apiserver with both
webhooks registered and the bundled policies: each attack as a DAG author writes it
(pod_override merged into the worker pod, KPO arguments, or override annotations), created
as the Airflow scheduler, ends in a denial naming the envelope rule.

Self-contained: its own attack list (tests/e2e/envelope_attacks.py), and the same list
checked offline against the core (`test_attack_offline`, not marked e2e) so a failure in the
cluster points at the API server, not at the policies. Every attack pod is a valid Pod
(hugepages beside memory, extended resources with requests equal to limits): Kubernetes' own
validation runs before validating webhooks, and must not be what refuses it.
"""

from __future__ import annotations

import base64
import contextlib
import json

import jsonpatch
import pytest

from tests.e2e.envelope_attacks import ATTACKS, RUNTIME_CLASS, Attack, attack_pod
from tests.e2e.harness import E2EEnvironment, api_message
from tests.e2e.scenarios import (
    DENIED,
    Scenario,
    build_pod,
    denial_prefix,
    e2e_policies,
    scheduler_username,
)
from tests.support.admission_reviews import pod_review
from tests.support.pods import DEFAULT_TOLERATIONS
from webhook.cluster.registration import MUTATING_WEBHOOK, VALIDATING_WEBHOOK
from webhook.mutation.merge import merge_pod
from webhook.policy.load import load_policy_dir
from webhook.review import MUTATE, VALIDATE, answer


@pytest.mark.e2e
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_denied_by_the_api_server(e2e: E2EEnvironment, namespace: str,
                                            runtime_class: None, attack: Attack) -> None:
    from kubernetes.client.exceptions import ApiException

    pod = attack_pod(attack, namespace)
    try:
        with pytest.raises(ApiException) as raised:
            e2e.create_pod(pod, scheduler_username(namespace))
        message = api_message(raised.value)
        assert raised.value.status == 403, message
        assert message.startswith(denial_prefix(attack.denied_by)), message
        for part in attack.messages:
            assert part in message, message
    finally:
        e2e.delete_pod(namespace, attack.name)


def windows_kpo_pod(namespace: str) -> dict:
    """A stock KPO pod for a Windows node (KPO `node_selector` and the pod's `os`)."""
    pod = build_pod(Scenario("env-windows-kpo", "airflow3-kpo", DENIED), namespace)
    return merge_pod(pod, {"spec": {"os": {"name": "windows"},
                                    "nodeSelector": {"kubernetes.io/os": "windows"}}})


@pytest.mark.e2e
def test_a_windows_kpo_pod_is_admitted(e2e: E2EEnvironment, namespace: str) -> None:
    """It was always denied: the mutation takes back the locked seccomp profile Windows
    forbids, and the envelope no longer requires it there."""
    pod = windows_kpo_pod(namespace)
    try:
        created, warnings = e2e.create_pod_warned(pod, scheduler_username(namespace))
        assert created["spec"]["os"] == {"name": "windows"}
        assert "seccompProfile" not in (created["spec"].get("securityContext") or {})
        assert "envelope:" not in warnings, warnings
    finally:
        e2e.delete_pod(namespace, pod["metadata"]["name"])


def test_a_windows_kpo_pod_is_admitted_offline(served_policies) -> None:
    namespace = "airflow-e2e-offline"
    pod = windows_kpo_pod(namespace)
    for hook in (MUTATE, VALIDATE):
        status, body, _ = answer(hook, pod_review(
            pod, uid="e2e-offline", namespace=namespace,
            username=scheduler_username(namespace)), served_policies)
        assert status == 200 and body["response"]["allowed"], body["response"]
        if body["response"].get("patch"):
            pod = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(
                body["response"]["patch"])))
    assert "envelope:" not in " ".join(body["response"].get("warnings", []))


@pytest.fixture(scope="module")
def runtime_class(e2e: E2EEnvironment):
    """A RuntimeClass that exists, so only the envelope can refuse a pod naming it."""
    from kubernetes import client

    api = client.NodeV1Api(e2e.api_client())
    body = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": RUNTIME_CLASS}, "handler": "kata"}
    try:
        api.create_runtime_class(body, _preload_content=False)
    except client.exceptions.ApiException as exc:
        if exc.status != 409:  # left over from an earlier run against the same cluster
            raise
    yield
    with contextlib.suppress(client.exceptions.ApiException):
        api.delete_runtime_class(RUNTIME_CLASS, _preload_content=False)


# --- the same attacks against the offline core (runs everywhere) ------------------------------


@pytest.fixture(scope="module")
def served_policies(tmp_path_factory: pytest.TempPathFactory):
    """What the e2e webhook serves: the bundled policies, trusting the e2e namespaces."""
    return load_policy_dir(e2e_policies(tmp_path_factory.mktemp("env") / "policies")
                           ).policy_set


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_offline(served_policies, attack: Attack) -> None:
    namespace = "airflow-e2e-offline"
    policies = served_policies
    pod = attack_pod(attack, namespace)
    pod["spec"]["tolerations"] = [*(pod["spec"].get("tolerations") or []),
                                  *DEFAULT_TOLERATIONS]
    for hook, name in ((MUTATE, MUTATING_WEBHOOK), (VALIDATE, VALIDATING_WEBHOOK)):
        status, body, _ = answer(hook, pod_review(
            pod, uid="e2e-offline", namespace=namespace,
            username=scheduler_username(namespace)), policies)
        assert status == 200
        response = body["response"]
        if not response["allowed"]:
            assert name == attack.denied_by, response["status"]["message"]
            assert response["status"]["code"] == 403
            for part in attack.messages:
                assert part in response["status"]["message"]
            return
        if response.get("patch"):
            pod = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    raise AssertionError(f"{attack.name} was admitted")
