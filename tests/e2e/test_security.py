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
    BUNDLED_ACCOUNTS_NAMESPACE,
    BY_NAME,
    DENIED,
    LEGACY_NAMESPACE,
    OVERRIDE,
    PRIORITY_CLASS,
    PRIORITY_VALUE,
    SCHEDULER_SA,
    WORKER_SA,
    Attack,
    attack_pod,
    check_admitted,
    check_denied,
    namespace_for,
    username,
)

pytestmark = pytest.mark.e2e


def _let_accounts_create_pods(e2e: E2EEnvironment, namespace: str, home: str) -> None:
    """Bind the scheduler and worker accounts of namespace `home` to the harness's
    pod-creating Role in `namespace` (KubernetesPodOperator needs it for the worker)."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(e2e.api_client())
    with contextlib.suppress(client.exceptions.ApiException):  # already bound
        rbac.create_namespaced_role_binding(namespace, {
            "metadata": {"name": f"airflow-accounts-of-{home}"[:63]},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "airflow-scheduler-pods"},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": home}
                         for account in (SCHEDULER_SA, WORKER_SA)]}, _preload_content=False)


@pytest.fixture(scope="module")
def attack_namespaces(e2e: E2EEnvironment, namespace: str) -> Iterator[str]:
    """The test namespace and LEGACY_NAMESPACE (the bundled Exemption's), workers allowed to
    create pods in both, and the PriorityClass a task may ask for."""
    from kubernetes import client

    with contextlib.suppress(client.exceptions.ApiException):  # a reused cluster has it
        e2e.create_namespace(LEGACY_NAMESPACE)
    _let_accounts_create_pods(e2e, namespace, namespace)
    _let_accounts_create_pods(e2e, LEGACY_NAMESPACE, BUNDLED_ACCOUNTS_NAMESPACE)
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


# --- a crash while mutating: through the API server, by a webhook that always crashes -------

CRASH_LABEL = "airflow-pod-webhook.io/e2e-crash"
CRASH_CONFIG, CRASH_WEBHOOK = "airflow-pod-webhook-e2e-crash", "crash.airflow-pod-webhook.io"
# The real server, but its mutation raises: what a bug triggered by a pod would do.
CRASHING_SERVE = (
    "import sys\n"
    "import webhook.decide as decide\n"
    "def crash(*args, **kwargs):\n"
    "    raise ZeroDivisionError('injected by the e2e test')\n"
    "decide.mutate_pod = crash\n"
    "from webhook.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.fixture(scope="module")
def crashing_webhook(e2e: E2EEnvironment, namespace: str, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[str]:
    """A second mutating webhook, backed by a crashing server, for pods with CRASH_LABEL."""
    import os
    import signal
    import subprocess
    import sys

    from kubernetes.client.exceptions import ApiException

    from tests.e2e.harness import REPO, RETRY_TIMEOUT, deadline_loop
    from tests.support.server_process import RunningServer, free_port, wait_ready
    from webhook.cluster.certs import write_certs
    from webhook.cluster.registration import MUTATING_KIND, webhook_configurations

    if e2e.webhook is None:
        pytest.skip("the crashing webhook runs beside envtest (registered by URL)")
    workdir = tmp_path_factory.mktemp("crash")
    write_certs(workdir, "airflow-pod-webhook", "airflow-pod-webhook")
    port, log_path = free_port(), workdir / "crash.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", CRASHING_SERVE, "serve", "--policies", str(REPO / "policies"),
             "--cert-dir", str(workdir), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = e2e.admission_api()
    try:
        wait_ready(RunningServer(process, port, workdir, REPO / "policies", log_path))
        [config] = [c for c in webhook_configurations((workdir / "ca.crt").read_bytes(),
                                                      url=f"https://127.0.0.1:{port}")
                    if c["kind"] == MUTATING_KIND]
        config["metadata"]["name"] = CRASH_CONFIG
        [hook] = config["webhooks"]
        hook["name"] = CRASH_WEBHOOK
        hook["matchConditions"].append({"name": "e2e-crash",
                                        "expression": f'"{CRASH_LABEL}" in object.metadata.labels'})
        api.create_mutating_webhook_configuration(body=config, _preload_content=False)
        for attempt in deadline_loop(RETRY_TIMEOUT, 0.5):  # until the informer has it
            probe = attack_pod(BY_NAME["override-priority-class"], namespace)
            probe["metadata"].update(name=f"crash-probe-{attempt}")
            probe["metadata"]["labels"][CRASH_LABEL] = "true"
            try:
                e2e.create_pod(probe, f"system:serviceaccount:{namespace}:airflow-scheduler")
                e2e.delete_pod(namespace, probe["metadata"]["name"])
            except ApiException as exc:
                if CRASH_WEBHOOK in api_message(exc):
                    break
        yield namespace
    finally:
        with contextlib.suppress(ApiException):
            api.delete_mutating_webhook_configuration(CRASH_CONFIG, _preload_content=False)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def test_a_crash_mutating_a_pod_with_overrides_is_a_denial(
        e2e: E2EEnvironment, crashing_webhook: str) -> None:
    from kubernetes.client.exceptions import ApiException

    namespace = crashing_webhook
    user = f"system:serviceaccount:{namespace}:airflow-scheduler"
    with_overrides = attack_pod(BY_NAME["override-priority-class"], namespace)
    with_overrides["metadata"].update(name="crash-with-overrides")
    with_overrides["metadata"]["labels"][CRASH_LABEL] = "true"
    try:
        with pytest.raises(ApiException) as raised:
            e2e.create_pod(with_overrides, user)
        message = api_message(raised.value)
        assert raised.value.status == 403, message
        assert message.startswith(denial_prefix(CRASH_WEBHOOK)), message
        assert "pod not admitted, since its overrides could not be checked (webhook: internal)" \
            in message
    finally:
        e2e.delete_pod(namespace, "crash-with-overrides")
    # The same crash on a pod that asks for nothing: fails open, the validating hook judges it.
    plain = attack_pod(BY_NAME["override-priority-class"], namespace)
    plain["metadata"].update(name="crash-without-overrides")
    plain["metadata"]["annotations"].pop(OVERRIDE)
    plain["metadata"]["labels"][CRASH_LABEL] = "true"
    try:
        created = e2e.create_pod(plain, user)
        assert created["metadata"]["name"] == "crash-without-overrides"
    finally:
        e2e.delete_pod(namespace, "crash-without-overrides")
