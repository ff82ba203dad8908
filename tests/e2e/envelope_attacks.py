"""Issue 15's envelope attacks as DAG authors write them (a pod_override fragment, KPO
arguments or override annotations), each with the webhook and the messages that must deny it:
tests/e2e/test_envelope.py sends them through a real kube-apiserver and the offline core,
tests/test_audit.py walks them through `audit`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.e2e.scenarios import DENIED, Scenario, build_pod
from webhook.cluster.registration import MUTATING_WEBHOOK, VALIDATING_WEBHOOK
from webhook.mutation.merge import merge_pod

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
