"""Issue 15's "bounds that hold only on one path", through a real kube-apiserver with both
webhooks registered and the bundled policies: each attack as a DAG author writes it
(pod_override merged into the worker pod, KPO arguments, or override annotations), created
as the Airflow scheduler, ends in a denial naming the envelope rule.

Self-contained: its own attack list, and the same list checked offline against the core
(`test_attack_offline`, not marked e2e) so a failure in the cluster points at the API
server, not at the policies. Every attack pod is a valid Pod (hugepages beside memory,
extended resources with requests equal to limits): Kubernetes' own validation runs before
validating webhooks, and must not be what refuses it.
"""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass, field

import jsonpatch
import pytest

from tests.admission_reviews import pod_review
from tests.conftest import DEFAULT_TOLERATIONS
from tests.e2e.harness import E2EEnvironment, api_message
from tests.e2e.scenarios import (
    DENIED,
    Scenario,
    build_pod,
    denial_prefix,
    e2e_policies,
    scheduler_username,
)
from webhook.cluster.registration import MUTATING_WEBHOOK, VALIDATING_WEBHOOK
from webhook.mutation.merge import merge_pod
from webhook.policy.load import load_policy_dir
from webhook.review import MUTATE, VALIDATE, answer

P = "airflow-pod-webhook.io/"
RUNTIME_CLASS = "kata-e2e"  # created for the runtimeClassName attack: the RuntimeClass
# admission plugin refuses a pod naming a class that does not exist before any webhook runs


@dataclass(frozen=True)
class Attack:
    name: str  # also the pod name
    fixture: str
    denied_by: str
    messages: tuple[str, ...]  # each must appear in the denial
    pod_override: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)


def _limits(**quantities: str) -> dict:
    return {"requests": dict(quantities), "limits": dict(quantities)}


ATTACKS = (
    Attack("env-node-name-tolerate-all", "airflow3-executor", VALIDATING_WEBHOOK, (
        'spec.nodeName must not be set: it bypasses the scheduler and every taint (pick a '
        'node pool instead), got "worker-7" (envelope: placement)',
        "a key-less toleration tolerates every taint"),
        pod_override={"spec": {"nodeName": "worker-7",
                               "tolerations": [{"operator": "Exists"}]}}),
    Attack("env-affinity-refused-pool", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "nodeSelectorTerms[0].matchExpressions[0] must name only allowed node pools (default, "
        'highmem, gpu, spot), got {"key":"node-pool","operator":"In","values":["system"]} '
        "(envelope: placement)",),
        pod_override={"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "node-pool", "operator": "In",
                                       "values": ["system"]}]}]}}}}}),
    Attack("env-hugepages", "airflow3-executor", VALIDATING_WEBHOOK, (
        "spec.containers[base].resources.limits.hugepages-1Gi must not be set: "
        "Envelope/airflow bounds no such resource in limits",),
        pod_override={"spec": {"containers": [{"name": "base", "resources": _limits(
            **{"hugepages-1Gi": "2Gi", "memory": "2Gi"})}]}}),
    Attack("env-other-vendor-gpu", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.containers[base].resources.limits[amd.com/gpu] must not be set",),
        pod_override={"spec": {"containers": [{"name": "base", "resources": _limits(
            **{"amd.com/gpu": "2"})}]}}),
    Attack("env-mig-slice", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.containers[base].resources.limits[nvidia.com/mig-1g.5gb] must not be set",),
        pod_override={"spec": {"containers": [{"name": "base", "resources": _limits(
            **{"nvidia.com/mig-1g.5gb": "7"})}]}}),
    Attack("env-dra-claim", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.resourceClaims[gpus].resourceClaimTemplateName must name an allowed "
        "ResourceClaimTemplate (Envelope/airflow resources.claimTemplates: none)",),
        pod_override={"spec": {
            "resourceClaims": [{"name": "gpus", "resourceClaimTemplateName": "eight-a100"}],
            "containers": [{"name": "base", "resources": {"claims": [{"name": "gpus"}]}}]}}),
    Attack("env-star-container", "airflow3-kpo-xcom", MUTATING_WEBHOOK, (
        "annotation airflow-pod-webhook.io/pod-override: spec.resources.requests.cpu: must "
        "total at most 20 for the pod",),
        annotations={P + "pod-override": json.dumps({"spec": {"containers": [
            {"name": "*", "resources": _limits(cpu="16", memory="8Gi")}]}})}),
    Attack("env-many-containers", "airflow3-kpo", VALIDATING_WEBHOOK, (
        'spec.resources.requests.cpu must total at most 20 for the pod (Envelope/airflow '
        'perPod',),
        pod_override={"spec": {"containers": [
            {"name": "base", "resources": _limits(cpu="16")},
            {"name": "helper", "image": "busybox:1.36", "resources": _limits(cpu="16")}]}}),
    Attack("env-init-container-cpus", "airflow3-kpo", VALIDATING_WEBHOOK, (
        'spec.initContainers[warm-cache].resources.requests.cpu must be at most 16 '
        '(Envelope/airflow perContainer), got "400" (envelope: resources)',),
        pod_override={"spec": {"initContainers": [
            {"name": "warm-cache", "image": "busybox:1.36",
             "resources": {"requests": {"cpu": "400"}}}]}}),
    Attack("env-scheduler-service-account", "airflow3-executor", VALIDATING_WEBHOOK, (
        'spec.serviceAccountName is forbidden (*scheduler*) (Envelope/airflow '
        'serviceAccountNames), got "airflow-scheduler" (envelope: serviceAccountNames)',),
        pod_override={"spec": {"serviceAccountName": "airflow-scheduler"}}),
    Attack("env-system-node-critical", "airflow3-kpo", VALIDATING_WEBHOOK, (
        'spec.priorityClassName must be one of airflow-* (Envelope/airflow '
        'priorityClassNames), got "system-node-critical" (envelope: priorityClassNames)',),
        pod_override={"spec": {"priorityClassName": "system-node-critical"}}),
    Attack("env-scheduler-name", "airflow3-kpo", VALIDATING_WEBHOOK, (
        'spec.schedulerName must be one of default-scheduler (Envelope/airflow '
        'schedulerNames), got "rogue-scheduler" (envelope: schedulerNames)',),
        pod_override={"spec": {"schedulerName": "rogue-scheduler"}}),
    Attack("env-runtime-class", "airflow3-kpo", VALIDATING_WEBHOOK, (
        'spec.runtimeClassName must be one of (none allowed) (Envelope/airflow '
        f'runtimeClassNames), got "{RUNTIME_CLASS}" (envelope: runtimeClassNames)',),
        pod_override={"spec": {"runtimeClassName": RUNTIME_CLASS}}),
    Attack("env-container-seccomp-unconfined", "airflow3-executor", VALIDATING_WEBHOOK, (
        'spec.containers[base].securityContext.seccompProfile must be {"type": '
        '"RuntimeDefault"}, as the locked pod-level setting (locked by '
        'PodTemplate/airflow-defaults spec.securityContext.seccompProfile), got '
        '{"type":"Unconfined"} (envelope: lockedFields)',),
        pod_override={"spec": {"containers": [{"name": "base", "securityContext": {
            "seccompProfile": {"type": "Unconfined"}}}]}}),
    # Issue 20: what a pod reaches — Airflow's own Secrets, volumes, Service-selecting labels,
    # pod affinity, containers without a limit, service accounts not on the allowlist.
    Attack("env-kpo-env-from-metadata", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.containers[base].envFrom[0].secretRef.name must not name one of Airflow's own "
        'Secrets (airflow-metadata) (Envelope/airflow secrets), got "airflow-metadata" '
        "(envelope: secrets)",),
        pod_override={"spec": {"containers": [{"name": "base", "envFrom": [
            {"secretRef": {"name": "airflow-metadata"}}]}]}}),
    Attack("env-pod-override-jwt-volume", "airflow3-executor", VALIDATING_WEBHOOK, (
        "spec.volumes[jwt].secret.secretName must not name one of Airflow's own Secrets "
        '(airflow-jwt-secret) (Envelope/airflow secrets), got "airflow-jwt-secret" '
        "(envelope: secrets)",),
        pod_override={"spec": {
            "volumes": [{"name": "jwt", "secret": {"secretName": "airflow-jwt-secret"}}],
            "containers": [{"name": "base", "volumeMounts": [
                {"name": "jwt", "mountPath": "/jwt", "readOnly": True}]}]}}),
    Attack("env-annotation-fernet-env", "airflow3-kpo", MUTATING_WEBHOOK, (
        "annotation airflow-pod-webhook.io/pod-override: "
        "spec.containers[base].env[FERNET].valueFrom.secretKeyRef.name: must not be set: an "
        "override annotation never adds a reference to a Secret (Envelope/airflow secrets)",),
        annotations={P + "pod-override": json.dumps({"spec": {"containers": [
            {"name": "base", "env": [{"name": "FERNET", "valueFrom": {"secretKeyRef": {
                "name": "airflow-fernet-key", "key": "fernet-key"}}}]}]}})}),
    Attack("env-dags-claim-read-write", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.containers[base].volumeMounts[/opt/airflow/dags].readOnly must be true: claim "
        "airflow-dags mounts read-only (Envelope/airflow volumes.persistentVolumeClaims), got "
        "<unset> (envelope: volumes)",),
        pod_override={"spec": {
            "volumes": [{"name": "dags", "persistentVolumeClaim": {"claimName": "airflow-dags"}}],
            "containers": [{"name": "base", "volumeMounts": [
                {"name": "dags", "mountPath": "/opt/airflow/dags"}]}]}}),
    Attack("env-ephemeral-clone", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.volumes[clone].ephemeral.volumeClaimTemplate.spec.dataSource must not be set: a "
        "clone copies another claim's data (Envelope/airflow volumes.ephemeral)",
        "spec.volumes[clone].ephemeral.volumeClaimTemplate.spec.resources.requests.storage must "
        'be at most 100Gi (Envelope/airflow volumes.ephemeral), got "64Ti"',
        "spec.volumes[clone].ephemeral.volumeClaimTemplate.spec.storageClassName must be an "
        "allowed storage class"),
        pod_override={"spec": {"volumes": [{"name": "clone", "ephemeral": {
            "volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": "premium-any",
                "dataSource": {"kind": "PersistentVolumeClaim", "name": "airflow-dags"},
                "resources": {"requests": {"storage": "64Ti"}}}}}}]}}),
    Attack("env-inline-csi", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.volumes[raw].csi.driver must be an allowed CSI driver (secrets-store.csi.k8s.io) "
        '(Envelope/airflow volumes.csi), got "hostpath.csi.k8s.io" (envelope: volumes)',),
        pod_override={"spec": {"volumes": [{"name": "raw", "csi": {
            "driver": "hostpath.csi.k8s.io"}}]}}),
    Attack("env-api-server-labels", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "metadata.labels.component must not be set: Services and NetworkPolicies select "
        "Airflow's components by it",
        'metadata.labels.tier must not be set: Services and NetworkPolicies select Airflow\'s '
        'components by it (tier=airflow; Envelope/airflow labels), got "airflow" '
        "(envelope: labels)"),
        pod_override={"metadata": {"labels": {"tier": "airflow", "component": "api-server",
                                              "release": "airflow"}}}),
    Attack("env-annotation-labels", "airflow3-kpo", MUTATING_WEBHOOK, (
        "annotation airflow-pod-webhook.io/pod-override: metadata.labels.component: may not "
        "be overridden (OverridePolicy/default allowedFields)",),
        annotations={P + "pod-override": json.dumps({"metadata": {"labels": {
            "component": "api-server"}}})}),
    Attack("env-anti-affinity-every-namespace", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
        ".namespaceSelector must not be set",
        "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
        ".topologyKey must be an allowed topology key (kubernetes.io/hostname, "
        "topology.kubernetes.io/zone, topology.kubernetes.io/region) (Envelope/airflow "
        'affinity), got "kubernetes.io/os" (envelope: affinity)'),
        pod_override={"spec": {"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchExpressions": [
                    {"key": "app", "operator": "Exists"}]},
                "namespaceSelector": {}, "topologyKey": "kubernetes.io/os"}]}}}}),
    Attack("env-unlimited-second-container", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.containers[miner].resources.limits.memory must be set: a container without a "
        "memory limit is unbounded (Envelope/airflow limits), got <unset> (envelope: limits)",
        "spec.volumes[shm].emptyDir.sizeLimit must be set on a memory-backed emptyDir"),
        pod_override={"spec": {
            "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
            "containers": [{"name": "miner", "image": "busybox:1.36",
                            "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}]}]}}),
    Attack("env-cleanup-service-account", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.serviceAccountName is forbidden (*cleanup*) (Envelope/airflow "
        'serviceAccountNames), got "airflow-cleanup" (envelope: serviceAccountNames)',),
        pod_override={"spec": {"serviceAccountName": "airflow-cleanup"}}),
    Attack("env-unlisted-service-account", "airflow3-kpo", VALIDATING_WEBHOOK, (
        "spec.serviceAccountName must be one of default, *airflow-worker (Envelope/airflow "
        'serviceAccountNames), got "team-b-admin" (envelope: serviceAccountNames)',),
        pod_override={"spec": {"serviceAccountName": "team-b-admin"}}),
)


def attack_pod(attack: Attack, namespace: str) -> dict:
    """The pod Airflow sends: its fixture with the DAG author's pod_override merged in."""
    pod = build_pod(Scenario(attack.name, attack.fixture, DENIED,
                             annotations=attack.annotations), namespace)
    return merge_pod(pod, attack.pod_override) if attack.pod_override else pod


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
