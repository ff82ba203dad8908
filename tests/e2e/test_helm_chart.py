"""`helm install` of deploy/helm/airflow-pod-webhook on a real kube-apiserver (envtest), through
helm-python-sdk (Helm v4 in-process): one install with the image reference brings up a
working webhook; an upgrade and a rollback keep it working; uninstall removes it.

envtest runs no kubelet, so the chart's Deployment never gets pods. The webhook process runs
here instead, from exactly what the chart put in the cluster: the policy files of its
ConfigMap and the cert and key of its TLS Secret. The chart registers it with its
`webhook.url` value (https://127.0.0.1:PORT, and the loopback address in the generated
cert): every other object is the chart's own, and what the API server calls, with which
caBundle and selectors, is the chart's registration."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import E2EEnvironment, api_message, deadline_loop, e2e_pod
from tests.e2e.namespaces import new_namespace
from tests.e2e.real_airflow import grant_pod_launcher
from tests.e2e.scenarios import APPLIED, scheduler_username
from tests.support.helm_chart import CHART_DIR, release_action
from tests.support.server_process import RunningServer, free_port, running_server
from webhook.cluster.registration import (
    DEFAULT_NAME,
    MUTATING_WEBHOOK,
    SINGLE_CALL_PATH,
    VALIDATING_WEBHOOK,
)

helm_python = pytest.importorskip("helm_python", reason="pip install helm-python-sdk ([test])")
pytestmark = pytest.mark.e2e
RELEASE = "apw"
RELEASE_NAMESPACE = "airflow-pod-webhook"
# mutate, validate and five hooks for what Airflow's accounts write or run; single-call: the
# mutating hook replaces the first two.
HOOKS = 7
SINGLE_CALL_HOOKS = 6


class ChartWebhook:
    """The chart's release, and the webhook process serving its ConfigMap and Secret."""

    def __init__(self, e2e: E2EEnvironment, workdir: Path, task_namespace: str) -> None:
        self.e2e, self.workdir, self.task_namespace = e2e, workdir, task_namespace
        self.port = free_port()
        self.config = helm_python.Config(kubeconfig_path=e2e.kubeconfig,
                                         namespace=RELEASE_NAMESPACE)
        self.chart = helm_python.Chart.load(CHART_DIR)
        self.server: RunningServer | None = None
        self._stack = contextlib.ExitStack()
        self.generation = 0

    def values(self, **extra: object) -> dict:
        """One value an admin must give (the image), the Airflow release whose scheduler
        creates pods in the task namespace, and where the webhook listens."""
        return {"image": {"repository": "registry.invalid/airflow-pod-webhook"},
                "airflow": {"releases": [{"release": "airflow",
                                          "namespace": self.task_namespace}]},
                "webhook": {"url": f"https://127.0.0.1:{self.port}", **extra},
                "certificates": {"ipAddresses": ["127.0.0.1"]}}

    def action(self, action: str, values: dict) -> dict:
        return release_action(self.config, action, self.chart, RELEASE, values,
                              RELEASE_NAMESPACE)

    def tls_secret(self) -> dict[str, bytes]:
        secret = self.e2e.core().read_namespaced_secret(f"{DEFAULT_NAME}-tls", RELEASE_NAMESPACE)
        return {k: base64.b64decode(v) for k, v in secret.data.items()}

    def serve(self) -> None:
        """(Re)start the webhook on what the release stores now, as a new pod would."""
        self.stop()
        self.generation += 1
        folder = self.workdir / f"pod-{self.generation}"
        (folder / "certs").mkdir(parents=True)
        (folder / "policies").mkdir()
        for name, data in self.tls_secret().items():
            (folder / "certs" / name).write_bytes(data)
        configmap = self.e2e.core().read_namespaced_config_map(f"{DEFAULT_NAME}-policies",
                                                               RELEASE_NAMESPACE)
        for name, text in configmap.data.items():
            (folder / "policies" / name).write_text(text)
        self._stack = contextlib.ExitStack()
        self.server = self._stack.enter_context(running_server(
            folder, folder / "policies", workers=1, port=self.port))

    def stop(self) -> None:
        self._stack.close()
        self.server = None


def ca_bundles(e2e: E2EEnvironment) -> list[bytes]:
    api = e2e.admission_api()
    hooks = []
    for method in ("mutating", "validating"):
        with contextlib.suppress(Exception):
            hooks += getattr(api, f"read_{method}_webhook_configuration")(DEFAULT_NAME).webhooks
    return [base64.b64decode(h.client_config.ca_bundle) for h in hooks]


@pytest.fixture(scope="module")
def chart(e2e: E2EEnvironment, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[ChartWebhook]:
    if e2e.webhook is None:
        pytest.skip("the chart's webhook runs on loopback here: only an envtest API server "
                    "reaches it")
    task_namespace = new_namespace(e2e)
    # The suite's own registration makes way for the chart's (same names), and comes back.
    e2e.replace_configurations([])
    with contextlib.suppress(Exception):
        e2e.core().create_namespace({"metadata": {"name": RELEASE_NAMESPACE}})
    webhook = ChartWebhook(e2e, tmp_path_factory.mktemp("chart"), task_namespace)
    try:
        yield webhook
    finally:
        webhook.stop()
        with contextlib.suppress(helm_python.HelmError):
            webhook.config.uninstall(RELEASE, ignore_not_found=True)
        e2e.register_by_url()
        e2e.wait_until_effective(task_namespace)
        e2e.delete_namespace(task_namespace)


def test_install_upgrade_rollback_uninstall_keep_the_webhook_working(
        e2e: E2EEnvironment, chart: ChartWebhook) -> None:
    namespace = chart.task_namespace
    scheduler = scheduler_username(namespace)

    # Install: one call with the image; the webhook serves the chart's Secret and ConfigMap.
    installed = chart.action("install", chart.values())
    assert installed["status"] == "deployed"
    assert installed["revision"] == 1
    ca = chart.tls_secret()["ca.crt"]
    assert ca_bundles(e2e) == [ca] * HOOKS
    chart.serve()
    e2e.wait_until_effective(namespace)
    pod = e2e.create_pod(e2e_pod("executor-template-and-profile", namespace, "after-install"),
                         scheduler)
    assert APPLIED in pod["metadata"]["annotations"]
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    e2e.delete_pod(namespace, "after-install")

    # Upgrade to single-call mode: the same CA (read back from the Secret), one hook.
    upgraded = chart.action("upgrade", chart.values(singleCall=True))
    assert upgraded["revision"] == 2
    assert chart.tls_secret()["ca.crt"] == ca
    assert ca_bundles(e2e) == [ca] * SINGLE_CALL_HOOKS
    configuration = e2e.admission_api().read_mutating_webhook_configuration(DEFAULT_NAME)
    assert configuration.webhooks[0].client_config.url.endswith(SINGLE_CALL_PATH)
    chart.serve()
    e2e.wait_until_effective(namespace, denied_by=MUTATING_WEBHOOK)

    # Rollback to revision 1: the mutating + validating pair again, still the same CA.
    chart.config.rollback(RELEASE, version=1, timeout=120)
    assert chart.config.status(RELEASE)["revision"] == 3
    assert ca_bundles(e2e) == [ca] * HOOKS
    e2e.wait_until_effective(namespace, denied_by=VALIDATING_WEBHOOK)
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as denied:
        e2e.create_pod(e2e_pod("privileged-pod", namespace, "privileged"), scheduler)
    assert f'admission webhook "{VALIDATING_WEBHOOK}" denied the request' in api_message(
        denied.value)

    # Uninstall: both configurations go with the release; pods are no longer judged.
    chart.config.uninstall(RELEASE)
    assert ca_bundles(e2e) == []
    for attempt in deadline_loop(60, 0.5):
        pod = e2e.create_pod(e2e_pod("executor-template-and-profile", namespace,
                                     f"gone-{attempt}"), scheduler)
        e2e.delete_pod(namespace, pod["metadata"]["name"])
        if APPLIED not in (pod["metadata"].get("annotations") or {}):
            break
    else:
        raise AssertionError("pods still reach the webhook after uninstall")


def test_another_release_s_worker_is_judged_on_unlabelled_pods(
        e2e: E2EEnvironment, chart: ChartWebhook,
        token_client: Callable[[str, str], Any]) -> None:
    """Release `prod` (ServiceAccounts prod-airflow-*): the chart registers prod's accounts,
    not the bundled release's, so a task holding its worker's token cannot slip a privileged
    pod past the webhook by leaving Airflow's labels off."""
    from kubernetes.client.exceptions import ApiException

    namespace = chart.task_namespace
    grant_pod_launcher(e2e.api_client(), namespace, release="prod-airflow")
    values = chart.values()
    values["airflow"] = {"releases": [{"release": "prod", "namespace": namespace}]}
    assert chart.action("install", values)["status"] == "deployed"
    try:
        chart.serve()
        e2e.wait_until_effective(namespace)
        worker = token_client(namespace, "prod-airflow-worker")
        pod = e2e_pod("privileged-pod", namespace, "unlabelled-privileged")
        pod["metadata"].pop("labels", None)
        last = "nothing tried"
        for _ in deadline_loop(60, 0.5):  # RBAC reaches the authorizer through informers
            try:
                e2e.create_pod_with(worker, pod)
            except ApiException as exc:
                last = api_message(exc)
                if exc.status == 403 and "webhook" in last:
                    break
                continue
            e2e.delete_pod(namespace, "unlabelled-privileged")
            raise AssertionError("prod's worker created an unlabelled privileged pod")
        else:
            raise AssertionError(f"never refused by the webhook (last: {last})")
        assert f'admission webhook "{VALIDATING_WEBHOOK}" denied the request' in last
        # The same pod from an account that is not Airflow's is not the webhook's to judge.
        created = e2e.create_pod(e2e_pod("privileged-pod", namespace, "admin-pod") | {
            "metadata": {"name": "admin-pod", "namespace": namespace}}, None)
        assert APPLIED not in (created["metadata"].get("annotations") or {})
        e2e.delete_pod(namespace, "admin-pod")
    finally:
        chart.stop()
        chart.config.uninstall(RELEASE)
