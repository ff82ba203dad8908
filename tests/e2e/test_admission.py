"""Pods created through a real kube-apiserver with both webhooks registered (envtest or kind).

Skips with one line when neither is available (see tests/e2e/harness.py choose_backend).
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import RETRY_TIMEOUT, E2EEnvironment, api_message, deadline_loop, e2e_pod
from tests.e2e.scenarios import (
    APPLIED,
    DENIED,
    SCENARIOS,
    Scenario,
    build_pod,
    check_pod,
    creator_of,
    denial_prefix,
    scheduler_username,
)
from webhook.cluster.registration import VALIDATING_WEBHOOK

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(e2e: E2EEnvironment, namespace: str, scenario: Scenario) -> None:
    from kubernetes.client.exceptions import ApiException

    pod = build_pod(scenario, namespace)
    where = pod["metadata"]["namespace"]
    # The scheduler's ServiceAccount may only create pods in the test namespace.
    creator = creator_of(scenario, namespace)
    try:
        if scenario.outcome == DENIED:
            with pytest.raises(ApiException) as raised:
                e2e.create_pod(pod, creator)
            message = api_message(raised.value)
            assert raised.value.status == scenario.status, message
            assert message.startswith(denial_prefix(scenario.denied_by)), message
            assert scenario.message in message
            return
        created = e2e.create_pod(pod, creator)
        assert check_pod(created, scenario) == []
    finally:
        e2e.delete_pod(where, scenario.name)


def test_webhook_down_follows_the_documented_failure_policy(
        e2e: E2EEnvironment, namespace: str) -> None:
    """Mutating Ignore, validating Fail (deploy/README.md): with no webhook answering, Airflow
    pods are refused with `failed calling webhook`; after the break-glass switch of the
    validating hook to Ignore they are created, without our patch."""
    from kubernetes.client.exceptions import ApiException

    user = scheduler_username(namespace)
    with e2e.webhook_stopped(namespace):
        refused = ""
        for attempt in deadline_loop(RETRY_TIMEOUT, 1.0):
            name = f"down-{attempt}"
            try:
                e2e.create_pod(e2e_pod("executor-template-and-profile", namespace, name), user)
            except ApiException as exc:
                refused = f"{exc.status} {api_message(exc)}"
                break
            # Still answered (e.g. kube-proxy not yet updated in kind): try again.
            e2e.delete_pod(namespace, name)
        assert refused.startswith("500 "), refused
        assert f'failed calling webhook "{VALIDATING_WEBHOOK}"' in refused

        e2e.set_validating_failure_policy("Ignore")  # the documented break-glass
        try:
            created, last = None, ""
            for attempt in deadline_loop(RETRY_TIMEOUT, 1.0):
                name = f"glass-{attempt}"
                try:
                    created = e2e.create_pod(
                        e2e_pod("executor-template-and-profile", namespace, name), user)
                    break
                except ApiException as exc:  # until the informer has the new policy
                    last = f"{exc.status} {api_message(exc)}"
            assert created is not None, f"never admitted after break-glass: {last}"
            e2e.delete_pod(namespace, created["metadata"]["name"])
            annotations = created["metadata"].get("annotations") or {}
            assert APPLIED not in annotations, "mutated although the webhook was down"
            assert "seccompProfile" not in created["spec"].get("securityContext", {})
        finally:
            e2e.set_validating_failure_policy("Fail")
