"""How the webhook is registered, checked against a real kube-apiserver: a second mutating
webhook running after ours (reinvocation), the single-call mode as `manifests --single-call`
renders it, and every object `manifests --all` renders accepted by the API server."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator

import jsonpatch
import pytest
import yaml

from tests.e2e.harness import (
    REPO,
    E2EEnvironment,
    LocalWebhook,
    api_message,
    deadline_loop,
    e2e_pod,
)
from tests.e2e.pod_compare import comparable, differences, server_defaulted
from tests.e2e.scenarios import (
    BY_NAME,
    PRIVILEGED_VIOLATION,
    check_pod,
    denial_prefix,
    scheduler_username,
)
from tests.e2e.side_webhook import CONFIGURATION, SIDECAR, SideWebhook, injected, patch_for
from tests.support.server_process import cli_command
from webhook.cluster.registration import (
    DEFAULT_NAME,
    MUTATING_WEBHOOK,
    SINGLE_CALL_PATH,
    VALIDATING_WEBHOOK,
)
from webhook.mutation.mutate import mutate_pod
from webhook.policy.model import PolicySet

pytestmark = pytest.mark.e2e
HOST_PATH_VIOLATION = "(baseline: hostPathVolumes)"


@pytest.fixture(scope="module")
def injector(e2e: E2EEnvironment, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[SideWebhook]:
    if e2e.webhook is None:
        pytest.skip("the in-process injector listens on loopback: only an envtest API server "
                    "reaches it")
    side = SideWebhook(tmp_path_factory.mktemp("injector"))
    side.start()
    api = e2e.admission_api()
    api.create_mutating_webhook_configuration(body=side.configuration(), _preload_content=False)
    try:
        yield side
    finally:
        api.delete_mutating_webhook_configuration(CONFIGURATION, _preload_content=False)
        side.stop()


def create_injected(e2e: E2EEnvironment, injector: SideWebhook, namespace: str, mode: str,
                    name: str) -> dict:
    """Create an executor pod the injector acts on in `mode`, retrying until its registration
    is effective (the injector was called for the pod); the stored pod."""
    for attempt in deadline_loop(30, 0.3):
        pod = injected(e2e_pod("executor-template-and-profile", namespace, f"{name}-{attempt}"),
                       mode)
        created = e2e.create_pod(pod, scheduler_username(namespace))
        e2e.delete_pod(namespace, created["metadata"]["name"])
        if (created["metadata"]["name"], mode) in injector.calls:
            return created
    raise AssertionError("the injector was never called")


def predicted_after_injection(e2e: E2EEnvironment, policies: PolicySet, pod: dict,
                              mode: str) -> dict:
    """Ours, then the injector, then ours again (reinvocation), all offline; then defaulted."""
    namespace = pod["metadata"]["namespace"]
    user = scheduler_username(namespace)
    first = mutate_pod(pod, policies, namespace, user).pod
    after_injector = jsonpatch.apply_patch(first, patch_for(mode, first))
    final = mutate_pod(after_injector, policies, namespace, user).pod
    return server_defaulted(e2e.core(), final)


@pytest.mark.parametrize("mode", ["sidecar", "unconfined-seccomp"])
def test_a_later_injector_is_followed_by_our_reinvocation(
        e2e: E2EEnvironment, namespace: str, injector: SideWebhook, e2e_policy_set: PolicySet,
        mode: str) -> None:
    created = create_injected(e2e, injector, namespace, mode, mode)
    name = created["metadata"]["name"]
    sent = injected(e2e_pod("executor-template-and-profile", namespace, name), mode)
    expected = predicted_after_injection(e2e, e2e_policy_set, sent, mode)
    assert differences(comparable(created), comparable(expected)) == []
    # What that means for the pod that runs:
    if mode == "sidecar":
        [sidecar] = [c for c in created["spec"]["containers"] if c["name"] == SIDECAR["name"]]
        assert sidecar["securityContext"] == {"allowPrivilegeEscalation": False,
                                              "capabilities": {"drop": ["ALL"]}}
    else:  # the locked field is locked again
        assert created["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_what_no_reinvocation_can_fix_is_judged_by_the_validating_hook(
        e2e: E2EEnvironment, namespace: str, injector: SideWebhook) -> None:
    from kubernetes.client.exceptions import ApiException

    create_injected(e2e, injector, namespace, "sidecar", "warm")  # the injector is effective
    pod = injected(e2e_pod("executor-template-and-profile", namespace, "host-path"), "host-path")
    with pytest.raises(ApiException) as refused:
        e2e.create_pod(pod, scheduler_username(namespace))
    message = api_message(refused.value)
    assert refused.value.status == 403, message
    assert message.startswith(denial_prefix(VALIDATING_WEBHOOK)), message
    assert "injected-host" in message and HOST_PATH_VIOLATION in message
    assert ("host-path", "host-path") in injector.calls


def test_single_call_mode_as_manifests_renders_it(
        e2e: E2EEnvironment, local_webhook: LocalWebhook, namespace: str,
        injector: SideWebhook) -> None:
    from kubernetes.client.exceptions import ApiException

    user = scheduler_username(namespace)
    with e2e.single_call_registered(namespace) as rendered:
        # One mutating hook for creates; the validating hooks left are for Airflow's
        # accounts' later writes and the namespaces the create hook leaves out.
        assert [o["kind"] for o in rendered] == ["MutatingWebhookConfiguration",
                                                 "ValidatingWebhookConfiguration"]
        assert VALIDATING_WEBHOOK not in [h["name"] for h in rendered[1]["webhooks"]]
        stored = json.loads(e2e.admission_api().read_mutating_webhook_configuration(
            DEFAULT_NAME, _preload_content=False).data)
        [hook] = stored["webhooks"]
        assert hook["clientConfig"]["url"] == local_webhook.url + SINGLE_CALL_PATH
        assert (hook["failurePolicy"], hook["reinvocationPolicy"]) == ("Fail", "IfNeeded")

        scenario = BY_NAME["executor-template-and-profile"]
        created = e2e.create_pod(e2e_pod(scenario.name, namespace, "single-call"), user)
        e2e.delete_pod(namespace, "single-call")
        assert check_pod(created, scenario) == []

        for pod, violation in (
                (e2e_pod("privileged-pod", namespace, "single-call-privileged"),
                 PRIVILEGED_VIOLATION),
                # the injector's change, judged when kube-apiserver reinvokes us
                (injected(e2e_pod(scenario.name, namespace, "single-call-host-path"),
                          "host-path"), HOST_PATH_VIOLATION)):
            with pytest.raises(ApiException) as refused:
                e2e.create_pod(pod, user)
            message = api_message(refused.value)
            assert refused.value.status == 403, message
            assert message.startswith(denial_prefix(MUTATING_WEBHOOK)), message
            assert violation in message


@pytest.mark.parametrize("options", [(), ("--self-patch-ca-bundle",)],
                         ids=["default", "self-patch-ca-bundle"])
def test_every_object_manifests_all_renders_is_accepted(
        e2e: E2EEnvironment, local_webhook: LocalWebhook, options: tuple[str, ...]) -> None:
    from kubernetes.client.exceptions import ApiException

    rendered = subprocess.run(
        [*cli_command(), "manifests", "--all", "--cert-dir", str(local_webhook.cert_dir),
         "--image", "registry.example/airflow-pod-webhook:0.1.0", *options,
         "--deploy-dir", str(REPO / "deploy")],
        capture_output=True, text=True, check=True, timeout=120).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    kinds = sorted(o["kind"] for o in objects)
    assert {"Namespace", "Deployment", "Service", "ConfigMap", "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration"} <= set(kinds)
    ca = base64.b64decode(next(o for o in objects if o["kind"] == "MutatingWebhookConfiguration")
                          ["webhooks"][0]["clientConfig"]["caBundle"])
    assert ca == (local_webhook.cert_dir / "ca.crt").read_bytes()

    # The namespace for real (namespaced objects need it to exist), everything else as a
    # server-side dry run with strict field validation: schema, defaults and admission are
    # the API server's, and our own registration stays as it is.
    answered = [e2e.submit(o, dry_run=o["kind"] != "Namespace") for o in objects]
    for sent, got in zip(objects, answered, strict=True):
        assert (got["kind"], got["metadata"]["name"], got["metadata"].get("namespace")) == (
            sent["kind"], sent["metadata"]["name"], sent["metadata"].get("namespace"))
    deployment = next(o for o in answered if o["kind"] == "Deployment")
    assert deployment["spec"]["strategy"]["type"]  # defaulted by the API server
    # A dry run stored nothing: our registration still points at the local webhook.
    stored = json.loads(e2e.admission_api().read_validating_webhook_configuration(
        DEFAULT_NAME, _preload_content=False).data)
    assert stored["webhooks"][0]["clientConfig"]["url"].startswith(local_webhook.url)

    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(ApiException) as refused:
        e2e.submit(broken, dry_run=True)
    assert refused.value.status == 400 and "unknown field" in api_message(refused.value)
    assert "imagePullPolice" in api_message(refused.value)
