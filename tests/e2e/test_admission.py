"""Pods created through a real kube-apiserver with both webhooks registered (envtest or kind).

Skips with one line when neither is available (see tests/e2e/harness.py choose_backend).
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.harness import (
    RETRY_TIMEOUT,
    E2EEnvironment,
    api_message,
    deadline_loop,
    e2e_pod,
)
from tests.e2e.scenarios import (
    APPLIED,
    DENIED,
    SCENARIOS,
    Scenario,
    build_pod,
    check_pod,
    denial_prefix,
    scheduler_username,
)
from tests.test_cert_rotation import replace_file
from webhook.certs import generate_ca, write_certs
from webhook.registration import DEFAULT_NAME, VALIDATING_WEBHOOK, merge_ca_bundles

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(e2e: E2EEnvironment, namespace: str, scenario: Scenario) -> None:
    from kubernetes.client.exceptions import ApiException

    pod = build_pod(scenario, namespace)
    where = pod["metadata"]["namespace"]
    # The scheduler's ServiceAccount may only create pods in the test namespace.
    creator = None if scenario.in_kube_system else scheduler_username(namespace)
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


def test_self_registration_rotates_the_ca_without_a_failed_create(
        e2e: E2EEnvironment, namespace: str) -> None:
    """The documented CA rotation with `serve --patch-ca-bundle`: new CA into ca.crt first
    (old + new), the webhook puts it into caBundle, and only then the serving cert changes."""
    from kubernetes.client.exceptions import ApiException

    if e2e.webhook is None:
        pytest.skip("self-registration is exercised with the local webhook (envtest)")
    cert_dir = e2e.webhook.cert_dir
    old_ca = (cert_dir / "ca.crt").read_bytes()
    new_ca, new_key = generate_ca("airflow-pod-webhook-ca-2")
    user = scheduler_username(namespace)
    failures: list[str] = []

    def create_one(n: int) -> None:
        pod = e2e_pod("executor-template-and-profile", namespace, f"rotation-{n}")
        try:
            created = e2e.create_pod(pod, user)
            if APPLIED not in (created["metadata"].get("annotations") or {}):
                failures.append(f"rotation-{n} was not mutated")
        except ApiException as exc:
            failures.append(f"rotation-{n}: {exc.status} {api_message(exc)}")
        finally:
            e2e.delete_pod(namespace, f"rotation-{n}")

    def ca_bundles() -> list[bytes]:
        import base64
        import json

        api = e2e.admission_api()
        bundles = []
        for kind in ("mutating", "validating"):
            raw = getattr(api, f"read_{kind}_webhook_configuration")(
                DEFAULT_NAME, _preload_content=False).data
            hook = json.loads(raw)["webhooks"][0]
            bundles.append(base64.b64decode(hook["clientConfig"]["caBundle"]))
        return bundles

    n = 0
    # Step 1: the Secret's ca.crt becomes new + old; tls.crt is unchanged.
    replace_file(cert_dir / "ca.crt", merge_ca_bundles(old_ca, new_ca))
    for _ in deadline_loop(RETRY_TIMEOUT, 0.5):
        create_one(n := n + 1)
        if all(new_ca in b and old_ca in b for b in ca_bundles()):
            break
    else:
        raise AssertionError(f"caBundle never got the new CA: {ca_bundles()}")
    time.sleep(2)  # the apiserver's webhook informers pick up the new caBundle
    # Step 2: the serving cert (and the CA files) switch to the new CA.
    replace_file(cert_dir / "ca.key", new_key)
    replace_file(cert_dir / "ca.crt", new_ca)
    write_certs(cert_dir, "airflow-pod-webhook", "airflow-pod-webhook")
    for _ in range(10):
        create_one(n := n + 1)
    assert failures == []
    assert all(new_ca in b and old_ca in b for b in ca_bundles()), "old CA dropped too early"


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
