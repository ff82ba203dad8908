"""Issue 19 through a real kube-apiserver: every pod an Airflow account writes is judged,
whatever its labels, on every later change, in every namespace.

The webhook is registered exactly as `manifests --url` renders it (the harness does), and
the requests are sent with real ServiceAccount tokens (TokenRequest), under the Airflow Helm
chart's pod-launcher Role; where an attack needs more (ephemeral containers, resize, binding,
other namespaces) the test grants it, as a broader Role or multiNamespaceMode would.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.harness import RETRY_TIMEOUT, E2EEnvironment, api_message, deadline_loop
from tests.e2e.namespaces import own_namespace, token_core
from tests.e2e.scenarios import E2E_GATE, SCHEDULER
from tests.support.pods import airflow_pod
from webhook.cluster.registration import (
    CONNECT_WEBHOOK,
    OWN_NAMESPACE_WEBHOOK,
    SYSTEM_WRITES_WEBHOOK,
    VALIDATING_WEBHOOK,
    WRITES_WEBHOOK,
)

pytestmark = pytest.mark.e2e

WORKER = "airflow-worker"
WEBHOOK_NAMESPACE = "airflow-pod-webhook"
# The Airflow Helm chart's pod-launcher Role (chart/templates/rbac/pod-launcher-role.yaml).
POD_LAUNCHER = [
    {"apiGroups": [""], "resources": ["pods"],
     "verbs": ["create", "list", "get", "patch", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
]
# What a broader Role (or `kubectl debug` rights) adds.
BROADER = [
    {"apiGroups": [""], "resources": ["pods/ephemeralcontainers", "pods/resize"],
     "verbs": ["patch", "update"]},
    {"apiGroups": [""], "resources": ["pods/binding"], "verbs": ["create"]},
]


def grant(e2e: E2EEnvironment, namespace: str, name: str, rules: list[dict],
          accounts_of: str) -> None:
    """A Role in `namespace` bound to the scheduler and worker accounts of `accounts_of`."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(e2e.api_client())
    with contextlib.suppress(client.exceptions.ApiException):  # already there
        rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules},
                                    _preload_content=False)
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": accounts_of}
                     for account in (SCHEDULER, WORKER)]}, _preload_content=False)


class Accounts:
    """The worker's and the scheduler's clients in one writer-test namespace."""

    def __init__(self, e2e: E2EEnvironment, namespace: str) -> None:
        self.e2e, self.namespace = e2e, namespace
        self.worker = token_core(e2e, namespace, WORKER)
        self.scheduler = token_core(e2e, namespace, SCHEDULER)

    def kpo_pod(self, **spec: Any) -> dict:
        pod = airflow_pod("airflow3-kpo")
        pod["metadata"].update(name=f"kpo-{uuid.uuid4().hex[:8]}", namespace=self.namespace)
        pod["spec"].update(spec)
        return self.e2e.create_pod_with(self.worker, pod)

    def executor_pod(self) -> dict:
        pod = airflow_pod("airflow3-executor")
        pod["metadata"].update(name=f"exec-{uuid.uuid4().hex[:8]}", namespace=self.namespace)
        return self.e2e.create_pod_with(self.scheduler, pod)


@pytest.fixture(scope="module")
def accounts(e2e: E2EEnvironment) -> Iterator[Accounts]:
    with own_namespace(e2e, "airflow-e2e-writes") as namespace:
        grant(e2e, namespace, "pod-launcher-role", POD_LAUNCHER, namespace)
        grant(e2e, namespace, "broader-pod-rights", BROADER, namespace)
        yield Accounts(e2e, namespace)


def denied(call: Callable[[], Any]) -> str:
    """The API server's message for a write our webhook refused."""
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as raised:
        call()
    message = api_message(raised.value)
    assert raised.value.status == 403, message
    return message


def denied_once_allowed(call: Callable[[], Any]) -> str:
    """`denied`, once a Role just bound reaches the authorizer (RBAC is read through informers:
    until then the API server answers 403 "forbidden", before any webhook)."""
    from kubernetes.client.exceptions import ApiException

    for _ in deadline_loop(RETRY_TIMEOUT, 0.2):
        try:
            call()
        except ApiException as exc:
            if exc.status == 403 and "cannot create resource" in api_message(exc):
                continue
        break
    return denied(call)


def writes_denial(rule: str) -> Callable[[str], bool]:
    return lambda message: (message.startswith(
        f'admission webhook "{WRITES_WEBHOOK}" denied the request: pod ')
        and " update violates " in message and f"({rule})" in message)


# --- an unlabelled pod from a worker's token -----------------------------------------------


def test_an_unlabelled_privileged_pod_from_the_workers_token_is_denied(
        accounts: Accounts) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "no-labels", "namespace": accounts.namespace},
           "spec": {"hostPID": True, "hostNetwork": True,
                    "serviceAccountName": SCHEDULER,
                    "tolerations": [{"operator": "Exists"}],
                    "priorityClassName": "system-node-critical",
                    "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                    "containers": [{"name": "c", "image": "ghcr.io/acme/export:0.9.1",
                                    "securityContext": {"privileged": True},
                                    "volumeMounts": [{"name": "root", "mountPath": "/host"}],
                                    "resources": {"requests": {"cpu": "512"}}}]}}
    message = denied(lambda: accounts.e2e.create_pod_with(accounts.worker, pod))
    assert message.startswith(f'admission webhook "{VALIDATING_WEBHOOK}" denied the request: '
                              "pod no-labels violates ")
    for rule in ("baseline: privileged", "baseline: hostNamespaces", "baseline: hostPathVolumes",
                 "envelope: placement", "envelope: resources", "envelope: serviceAccountNames",
                 "envelope: priorityClassNames"):
        assert f"({rule})" in message, rule


# --- later writes -------------------------------------------------------------------------


def test_a_keyless_toleration_added_later_is_denied(accounts: Accounts) -> None:
    pod = accounts.kpo_pod()
    tolerations = [*pod["spec"].get("tolerations", []), {"operator": "Exists"}]
    message = denied(lambda: accounts.worker.patch_namespaced_pod(
        pod["metadata"]["name"], accounts.namespace,
        [{"op": "replace" if "tolerations" in pod["spec"] else "add",
          "path": "/spec/tolerations", "value": tolerations}]))
    assert writes_denial("envelope: placement")(message), message
    assert "a key-less toleration tolerates every taint" in message


def test_an_image_swapped_later_is_held_to_the_image_rules(accounts: Accounts) -> None:
    pod = accounts.kpo_pod()
    message = denied(lambda: accounts.worker.patch_namespaced_pod(
        pod["metadata"]["name"], accounts.namespace,
        [{"op": "replace", "path": "/spec/containers/0/image",
          "value": "evil.example.com/miner:1"}]))
    assert writes_denial("airflow: images")(message), message
    assert 'must come from an allowed registry' in message


def test_a_pool_added_while_gated_and_the_gate_removed_with_it_are_denied(
        accounts: Accounts) -> None:
    pod = accounts.kpo_pod(schedulingGates=[{"name": E2E_GATE}])
    name = pod["metadata"]["name"]
    pin = {"node-pool": "control-plane", "kubernetes.io/hostname": "master-0"}
    message = denied(lambda: accounts.worker.patch_namespaced_pod(
        name, accounts.namespace, {"spec": {"nodeSelector": pin}}))
    assert writes_denial("envelope: placement")(message), message
    assert 'must be one of the allowed node pools' in message
    # Dropping the gate in the same write (Kubernetes allows it: the old pod was gated).
    message = denied(lambda: accounts.worker.patch_namespaced_pod(name, accounts.namespace, [
        {"op": "remove", "path": "/spec/schedulingGates"},
        {"op": "add", "path": "/spec/nodeSelector", "value": pin}]))
    assert writes_denial("envelope: placement")(message), message
    # The gate alone, with the placement it was admitted with: the pod may be scheduled.
    accounts.worker.patch_namespaced_pod(name, accounts.namespace, [
        {"op": "remove", "path": "/spec/schedulingGates"}])


def test_a_kpo_pod_relabelled_as_another_dags_executor_pod_is_denied(
        accounts: Accounts) -> None:
    pod = accounts.kpo_pod()
    message = denied(lambda: accounts.worker.patch_namespaced_pod(
        pod["metadata"]["name"], accounts.namespace, {"metadata": {"labels": {
            "kubernetes_executor": "True", "airflow-worker": "1", "dag_id": "payroll"}}}))
    assert writes_denial("airflow: ownedMetadata")(message), message
    assert "metadata.labels.dag_id must stay " in message


def test_a_privileged_ephemeral_container_is_denied(accounts: Accounts) -> None:
    pod = accounts.kpo_pod()
    debug = {"name": "debug", "image": "ghcr.io/acme/export:0.9.1",
             "securityContext": {"privileged": True,
                                 "seccompProfile": {"type": "Unconfined"}}}
    message = denied(lambda: accounts.worker.patch_namespaced_pod_ephemeralcontainers(
        pod["metadata"]["name"], accounts.namespace,
        {"spec": {"ephemeralContainers": [debug]}}))
    assert writes_denial("baseline: privileged")(message), message
    assert "spec.ephemeralContainers[debug].securityContext.privileged" in message


def test_a_resize_past_the_envelope_is_denied(accounts: Accounts) -> None:
    pod = accounts.kpo_pod()
    [base] = pod["spec"]["containers"]
    # The same QoS class (Kubernetes refuses a resize that changes it): a request only.
    resources = copy.deepcopy(base["resources"])
    assert "cpu" not in resources.get("limits", {}), "a Burstable pod, as the templates make"
    resources["requests"]["cpu"] = "64"
    message = denied(lambda: accounts.worker.patch_namespaced_pod_resize(
        pod["metadata"]["name"], accounts.namespace,
        {"spec": {"containers": [{"name": base["name"], "resources": resources}]}}))
    assert writes_denial("envelope: resources")(message), message
    assert "spec.containers[base].resources.requests.cpu must be at most 16" in message


def test_a_binding_by_an_airflow_account_is_denied(accounts: Accounts) -> None:
    pod = accounts.kpo_pod()
    name = pod["metadata"]["name"]
    message = denied(lambda: accounts.worker.create_namespaced_pod_binding(
        name, accounts.namespace,
        {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
         "target": {"apiVersion": "v1", "kind": "Node", "name": "control-plane-0"}},
        _preload_content=False))
    assert writes_denial("airflow: binding")(message), message


def test_a_command_in_a_container_other_than_the_xcom_sidecar_is_refused(
        accounts: Accounts) -> None:
    # The chart's Role gives the worker pods/exec on every pod of its namespace: a task could
    # read the scheduler's environment (database connection, Fernet key) and token.
    from kubernetes.client.exceptions import ApiException

    name = accounts.executor_pod()["metadata"]["name"]
    message = denied(lambda: accounts.worker.connect_post_namespaced_pod_exec(
        name, accounts.namespace, command=["env"], container="base", stdout=True))
    assert message.startswith(
        f'admission webhook "{CONNECT_WEBHOOK}" denied the request: pod {name} '), message
    assert message.endswith(
        "exec.container must be airflow-xcom-sidecar: Airflow's accounts run commands only "
        "in a KubernetesPodOperator's XCom sidecar, never in another container (a task "
        "holding the worker's token could read the scheduler's environment and token), got "
        '"base" (airflow: exec)'), message
    # KPO reading its XCom sidecar passes the webhook (then fails: envtest runs no kubelet).
    with pytest.raises(ApiException) as passed:
        accounts.worker.connect_post_namespaced_pod_exec(
            name, accounts.namespace, command=["cat"], container="airflow-xcom-sidecar",
            stdout=True)
    assert "denied the request" not in api_message(passed.value)


# --- Airflow's own writes pass --------------------------------------------------------------


def test_airflows_bookkeeping_and_deletes_pass(accounts: Accounts) -> None:
    kpo = accounts.kpo_pod()
    ns = accounts.namespace
    # KubernetesPodOperator's cleanup, with the worker's token.
    accounts.worker.patch_namespaced_pod(kpo["metadata"]["name"], ns,
                                         {"metadata": {"labels": {"already_checked": "True"}}})
    executor = accounts.executor_pod()
    name = executor["metadata"]["name"]
    # A new scheduler adopts the pod, then marks it done.
    accounts.scheduler.patch_namespaced_pod(name, ns,
                                            {"metadata": {"labels": {"airflow-worker": "77"}}})
    accounts.scheduler.patch_namespaced_pod(
        name, ns, {"metadata": {"labels": {"airflow_executor_done": "True"}}})
    stored = accounts.e2e.core().read_namespaced_pod(name, ns)
    assert stored.metadata.labels["airflow-worker"] == "77"
    accounts.worker.delete_namespaced_pod(kpo["metadata"]["name"], ns, grace_period_seconds=0)
    accounts.scheduler.delete_namespaced_pod(name, ns, grace_period_seconds=0)


def test_a_webhook_outage_never_blocks_a_finalizer_removal_or_a_delete(
        e2e: E2EEnvironment, accounts: Accounts) -> None:
    from kubernetes.client.exceptions import ApiException

    held = accounts.kpo_pod()
    name, ns = held["metadata"]["name"], accounts.namespace
    accounts.worker.patch_namespaced_pod(
        name, ns, {"metadata": {"finalizers": ["example.com/e2e-hold"]}})
    accounts.worker.delete_namespaced_pod(name, ns)  # stays, being deleted, until released
    live = accounts.kpo_pod()
    with e2e.webhook_stopped(ns):
        accounts.worker.patch_namespaced_pod(name, ns, {"metadata": {"finalizers": None}})
        accounts.worker.delete_namespaced_pod(live["metadata"]["name"], ns,
                                              grace_period_seconds=0)
    with pytest.raises(ApiException) as raised:
        accounts.e2e.core().read_namespaced_pod(name, ns)
    assert raised.value.status == 404


# --- namespaces the label-selected hooks leave out ------------------------------------------


@contextlib.contextmanager
def granted_in(e2e: E2EEnvironment, namespace: str, accounts_of: str) -> Iterator[None]:
    """The pod-launcher Role in another namespace for the accounts of `accounts_of`, as the
    chart's multiNamespaceMode gives (a ClusterRole), removed afterwards."""
    from kubernetes import client

    name = f"pod-launcher-{accounts_of}"[:63]
    grant(e2e, namespace, name, POD_LAUNCHER, accounts_of)
    try:
        yield
    finally:
        rbac = client.RbacAuthorizationV1Api(e2e.api_client())
        with contextlib.suppress(client.exceptions.ApiException):
            rbac.delete_namespaced_role_binding(name, namespace, _preload_content=False)
        with contextlib.suppress(client.exceptions.ApiException):
            rbac.delete_namespaced_role(name, namespace, _preload_content=False)


def test_a_pod_override_into_kube_system_is_judged(e2e: E2EEnvironment,
                                                   accounts: Accounts) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"].update(name=f"exec-{uuid.uuid4().hex[:8]}", namespace="kube-system")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with granted_in(e2e, "kube-system", accounts.namespace):
        message = denied_once_allowed(lambda: e2e.create_pod_with(accounts.scheduler, pod))
    assert message.startswith(f'admission webhook "{SYSTEM_WRITES_WEBHOOK}" denied the '
                              "request: pod "), message
    assert "(baseline: privileged)" in message


def test_a_kpo_pod_in_the_webhooks_own_namespace_is_refused(e2e: E2EEnvironment,
                                                           accounts: Accounts) -> None:
    from kubernetes import client

    with contextlib.suppress(client.exceptions.ApiException):  # the harness may have made it
        e2e.core().create_namespace({"metadata": {"name": WEBHOOK_NAMESPACE}},
                                    _preload_content=False)
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"].update(name=f"kpo-{uuid.uuid4().hex[:8]}", namespace=WEBHOOK_NAMESPACE)
    # Hardened as `restricted` asks: the namespace may carry the deploy/ manifests' Pod
    # Security labels (another test applies them), whose check runs before any webhook.
    pod["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    for container in pod["spec"]["containers"]:
        container["securityContext"] = {"allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]}}
    with granted_in(e2e, WEBHOOK_NAMESPACE, accounts.namespace):
        message = denied_once_allowed(lambda: e2e.create_pod_with(accounts.worker, pod))
    assert message.startswith(f'admission webhook "{OWN_NAMESPACE_WEBHOOK}" denied the '
                              "request: pod "), message
    assert message.endswith("(airflow: webhookNamespace)")


# --- the writes real Airflow sent (tests/fixtures/airflow-requests/, branch issue-19b) -------


def replayable(pod: dict, namespace: str, name: str) -> dict:
    """The pod as its creator wrote it: what the API server stored, less what it added."""
    meta = pod["metadata"]
    spec = {k: v for k, v in pod["spec"].items() if k not in ("nodeName",)}
    return {"apiVersion": "v1", "kind": "Pod", "spec": spec,
            "metadata": {"name": name, "namespace": namespace,
                         "labels": meta.get("labels", {}),
                         "annotations": meta.get("annotations", {})}}


@pytest.mark.parametrize("version", ["2.10.5", "3.3.2"])
def test_the_writes_real_airflow_sent_pass_the_writer_hooks(
        e2e: E2EEnvironment, accounts: Accounts, version: str) -> None:
    """Each captured PATCH and DELETE, sent again with the same account's token, body and
    Content-Type, to the same pod in the same phase, through the hooks as `manifests --url`
    renders them."""
    from tests.support.airflow_requests import load_requests

    ns = accounts.namespace
    clients = {SCHEDULER: accounts.scheduler, WORKER: accounts.worker}
    made: set[str] = set()
    for document in load_requests(version).values():
        request, old = document["request"], document["old_object"]
        pod_name = f"{old['metadata']['name']}-{version.replace('.', '-')}"
        client = clients[request["user"].rsplit(":", 1)[1]]
        if pod_name not in made:
            e2e.create_pod_with(client, replayable(old, ns, pod_name))
            phase = old.get("status", {}).get("phase", "Pending")
            e2e.core().patch_namespaced_pod_status(pod_name, ns, {"status": {"phase": phase}})
            made.add(pod_name)
        if request["method"] == "PATCH":
            client.patch_namespaced_pod(pod_name, ns, request["body"],
                                        _content_type=request["content_type"])
        else:
            client.delete_namespaced_pod(pod_name, ns, grace_period_seconds=0)
    assert made, "no captured request"
