"""Pods as kube-apiserver returns them: what an audit reads from a running cluster.

`as_stored` adds to a submitted pod what the API server adds: written from pods read back from
kube-apiserver v1.36 (tests/e2e/test_audit_cluster.py checks the parts envtest adds), plus what a
full cluster's ServiceAccount plugin, DefaultTolerationSeconds, Priority plugin and scheduler add.
"""

from __future__ import annotations

import copy

EXPLAIN = "airflow-pod-webhook.io/applied"


def foreign(name: str = "web") -> dict:
    """A pod that is not Airflow's."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "data-airflow"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}


def as_stored(pod: dict, explain: str | None = "revision=abc; PodTemplate/seccomp") -> dict:
    stored = copy.deepcopy(pod)
    meta = stored["metadata"]
    meta.update(uid="6f1c8a39-1d7e-4c55-9f77-0b7e4f1c2d3a", resourceVersion="48213",
                generation=1, creationTimestamp="2026-11-20T06:30:04Z",
                managedFields=[{"manager": "airflow", "operation": "Update",
                                "apiVersion": "v1", "time": "2026-11-20T06:30:04Z",
                                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}])
    if explain:
        meta.setdefault("annotations", {})[EXPLAIN] = explain
    spec = stored["spec"]
    for key in [k for k, v in spec.items() if v in ([], {}) and k != "affinity"]:
        del spec[key]  # omitempty: the API server never stores an empty list or map
    spec.update(dnsPolicy="ClusterFirst", enableServiceLinks=True, priority=0,
                preemptionPolicy="PreemptLowerPriority", schedulerName="default-scheduler",
                serviceAccount=spec.get("serviceAccountName", "default"),
                terminationGracePeriodSeconds=30, nodeName="worker-3")
    spec.setdefault("restartPolicy", "Always")
    spec["tolerations"] = spec.get("tolerations", []) + [
        {"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300} for k in ("not-ready", "unreachable")]
    spec.setdefault("volumes", []).append({"name": "kube-api-access-x7k2p", "projected": {
        "defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})
    for volume in spec["volumes"]:
        for source in ("configMap", "secret"):
            if source in volume:
                volume[source].setdefault("defaultMode", 420)
    for container in spec["containers"]:
        for key in [k for k, v in container.items() if v in ([], {})]:
            del container[key]
        container.update(terminationMessagePath="/dev/termination-log",
                         terminationMessagePolicy="File")
        container.setdefault("resources", {})  # a struct, stored even when empty
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("volumeMounts", []).append({
            "name": "kube-api-access-x7k2p", "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
    stored["status"] = {"phase": "Running", "qosClass": "BestEffort", "podIP": "10.0.3.17",
                        "conditions": [{"type": "PodScheduled", "status": "True"}]}
    return stored
