"""Issue 15's attacks, as a DAG author would mount them, each with the answer the cluster owes.

One list drives the run through a real kube-apiserver (tests/e2e/test_security.py) and the
same expectations against the offline core (tests/test_airflow_pods.py). A DAG author
controls pod_override (executor pods), the KubernetesPodOperator's arguments and labels (KPO
pods), the pod's annotations, and any task's worker ServiceAccount token; not the scheduler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.scenarios import DENIED, lookup
from tests.support.pods import airflow_pod
from webhook.cluster.registration import MUTATING_WEBHOOK, VALIDATING_WEBHOOK

ADMITTED = "admitted"
SCHEDULER_SA, WORKER_SA = "airflow-scheduler", "airflow-worker"
# The bundled Exemption legacy-nfs-export waives hostPath for DAG nfs_export in this namespace.
LEGACY_NAMESPACE = "airflow-legacy"
BUNDLED_ACCOUNTS_NAMESPACE = "airflow"  # where policies/00-settings.yaml expects Airflow's accounts
PRIORITY_CLASS, PRIORITY_VALUE = "airflow-e2e-batch", 1000
OVERRIDE = "airflow-pod-webhook.io/pod-override"
ABSENT = "<absent>"
HOST_ROOT = {"name": "host-root", "hostPath": {"path": "/"}}
NFS = {"name": "archive", "hostPath": {"path": "/mnt/archive"}}


@dataclass(frozen=True)
class Attack:
    name: str  # also the pod name
    fixture: str
    outcome: str  # DENIED or ADMITTED
    creator: str = SCHEDULER_SA  # the ServiceAccount that creates the pod
    legacy_namespace: bool = False  # created in LEGACY_NAMESPACE instead of the test one
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)  # set on the pod's spec (volumes: added)
    base: dict[str, Any] = field(default_factory=dict)  # set on container `base`
    denied_by: str = ""
    status: int = 0
    rules: tuple[str, ...] = ()  # each must be named in the denial message
    checks: tuple[tuple[tuple[Any, ...], Any], ...] = ()  # on the created pod; ABSENT allowed


def override(fragment: Any) -> dict[str, str]:
    return {OVERRIDE: fragment if isinstance(fragment, str) else json.dumps(fragment)}


ATTACKS: tuple[Attack, ...] = (
    # Classification: a KPO pod with the executor's label used to be "foreign", never judged.
    Attack("kpo-with-airflow-worker-label", "airflow3-kpo", DENIED, creator=WORKER_SA,
           labels={"airflow-worker": "3"}, spec={"hostPID": True, "volumes": [HOST_ROOT]},
           base={"securityContext": {"privileged": True}},
           denied_by=VALIDATING_WEBHOOK, status=403,
           rules=("airflow: podIdentity", "baseline: privileged", "baseline: hostNamespaces",
                  "baseline: hostPathVolumes")),
    # A KPO pod dressed as an executor pod of the exempted DAG does not get its Exemption.
    Attack("kpo-claims-executor-exemption", "airflow3-kpo", DENIED, creator=WORKER_SA,
           legacy_namespace=True,
           labels={"kubernetes_executor": "True", "airflow-worker": "3", "dag_id": "nfs_export"},
           annotations={"dag_id": "nfs_export", "task_id": "export_csv"},
           spec={"volumes": [NFS]}, denied_by=VALIDATING_WEBHOOK, status=403,
           rules=("airflow: podIdentity", "baseline: hostPathVolumes")),
    # Without the KPO marker, created with a worker's token (any task holds one): the worker
    # is no trusted creator of executor pods, so no Exemption either.
    Attack("worker-forges-exempted-executor-pod", "airflow3-executor", DENIED,
           creator=WORKER_SA, legacy_namespace=True,
           labels={"dag_id": "nfs_export"}, annotations={"dag_id": "nfs_export"},
           spec={"volumes": [NFS]}, denied_by=VALIDATING_WEBHOOK, status=403,
           rules=("baseline: hostPathVolumes",)),
    # The control: the same pod from the scheduler is the exempted task, and is admitted.
    Attack("scheduler-executor-pod-exempted", "airflow3-executor", ADMITTED,
           legacy_namespace=True,
           labels={"dag_id": "nfs_export"}, annotations={"dag_id": "nfs_export"},
           spec={"volumes": [NFS]},
           checks=((("spec", "volumes", "archive", "hostPath", "path"), "/mnt/archive"),)),
    # A KPO author naming the DAG and task of the bundled TaskPolicy does not get its 4Gi
    # (only the cluster template's 1Gi default).
    Attack("kpo-claims-task-policy", "airflow3-kpo", ADMITTED, creator=WORKER_SA,
           labels={"dag_id": "example_dag", "task_id": "extract"},
           checks=((("spec", "containers", "base", "resources", "requests", "memory"), "1Gi"),
                   (("metadata", "labels", "dag_id"), "example_dag"))),
    # The mutation may not remove what selects and identifies the pod.
    Attack("override-labels-null", "airflow3-executor", DENIED,
           annotations=override({"metadata": {"labels": None}}),
           base={"securityContext": {"privileged": True}},
           denied_by=MUTATING_WEBHOOK, status=403,
           rules=("metadata.labels: may not be removed or replaced", "Airflow-owned field")),
    Attack("override-annotations-null", "airflow3-executor", DENIED,
           annotations=override({"metadata": {"annotations": None}}),
           denied_by=MUTATING_WEBHOOK, status=403,
           rules=("metadata.annotations: may not be removed or replaced",
                  "Airflow-owned field")),
    Attack("override-replaces-executor-label", "airflow3-executor", DENIED,
           annotations=override({"metadata": {"labels": {"kubernetes_executor": "False"}}}),
           denied_by=MUTATING_WEBHOOK, status=403,
           rules=("metadata.labels.kubernetes_executor: Airflow owns this key",
                  "Airflow-owned field")),
    Attack("override-mirror-annotation", "airflow3-executor", DENIED,
           annotations=override({"metadata": {"annotations": {
               "kubernetes.io/config.mirror": "x"}}}),
           denied_by=MUTATING_WEBHOOK, status=403,
           rules=("marks a kubelet mirror pod", "Airflow-owned field")),
    # Malformed input is refused with a reason, never a crash that fails open.
    Attack("override-nan-quantity", "airflow3-executor", DENIED,
           annotations=override('{"spec": {"containers": [{"name": "base", "resources": '
                                '{"limits": {"cpu": NaN}}}]}}'),
           denied_by=MUTATING_WEBHOOK, status=400,
           rules=("is not valid JSON: NaN is not a JSON number",)),
    Attack("override-yaml-nan-quantity", "airflow3-executor", DENIED,
           annotations=override("spec:\n  containers:\n  - name: base\n    resources:\n"
                                "      limits: {memory: .nan}\n"),
           denied_by=MUTATING_WEBHOOK, status=400,
           rules=("spec.containers[0].resources.limits.memory: nan is not a number "
                  "Kubernetes accepts", "Pod schema")),
    Attack("override-yaml-integer-key", "airflow3-executor", DENIED,
           annotations=override("spec:\n  nodeSelector:\n    1: spot\n"),
           denied_by=MUTATING_WEBHOOK, status=400,
           rules=("map keys must be strings, got integer 1", "Pod schema")),
    Attack("override-nan-short-annotation", "airflow3-executor", DENIED,
           annotations={"airflow-pod-webhook.io/cpu": "NaN"},
           denied_by=MUTATING_WEBHOOK, status=400,
           rules=("'NaN' is not a Kubernetes quantity",)),
    # A priority class set by the mutation: the Priority plugin recomputes spec.priority.
    Attack("override-priority-class", "airflow3-executor", ADMITTED,
           annotations=override({"spec": {"priorityClassName": PRIORITY_CLASS}}),
           checks=((("spec", "priorityClassName"), PRIORITY_CLASS),
                   (("spec", "priority"), PRIORITY_VALUE),
                   (("spec", "preemptionPolicy"), "PreemptLowerPriority"))),
)

BY_NAME = {a.name: a for a in ATTACKS}


def attack_pod(attack: Attack, namespace: str) -> dict:
    """The attack's pod, from a real Airflow pod, adapted to `namespace`."""
    pod = airflow_pod(attack.fixture)
    pod.pop("status", None)
    meta = pod["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "generateName"):
        meta.pop(key, None)
    meta["name"] = attack.name
    meta["namespace"] = namespace
    meta["labels"] = {**meta.get("labels", {}), **attack.labels}
    meta["annotations"] = {**meta.get("annotations", {}), **attack.annotations}
    spec = json.loads(json.dumps(attack.spec))
    spec["volumes"] = pod["spec"].get("volumes", []) + spec.get("volumes", [])
    pod["spec"].update(spec)
    pod["spec"]["containers"][0].update(json.loads(json.dumps(attack.base)))
    return pod


def namespace_for(attack: Attack, test_namespace: str) -> str:
    return LEGACY_NAMESPACE if attack.legacy_namespace else test_namespace


def username(attack: Attack, namespace: str) -> str:
    """In LEGACY_NAMESPACE, the bundled Settings' own accounts (release `airflow` in namespace
    `airflow`); elsewhere the test namespace's, which the e2e Settings trust alike."""
    home = BUNDLED_ACCOUNTS_NAMESPACE if namespace == LEGACY_NAMESPACE else namespace
    return f"system:serviceaccount:{home}:{attack.creator}"


def check_admitted(pod: dict, attack: Attack) -> list[str]:
    """Mismatches between an admitted pod and the attack's expectations; [] when fine."""
    problems = []
    for path, expected in attack.checks:
        try:
            got = lookup(pod, path)
        except (KeyError, IndexError, TypeError):
            got = ABSENT
        if got != expected:
            problems.append(f"{'.'.join(map(str, path))}: expected {expected!r}, got {got!r}")
    return problems


def check_denied(message: str, attack: Attack) -> list[str]:
    """Rules the denial message fails to name; [] when it names every one."""
    return [rule for rule in attack.rules if rule not in message]


__all__ = ["ADMITTED", "ATTACKS", "BUNDLED_ACCOUNTS_NAMESPACE", "BY_NAME", "DENIED", "Attack",
           "attack_pod", "check_admitted", "check_denied", "namespace_for", "username"]
