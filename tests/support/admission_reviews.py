"""The AdmissionReview kube-apiserver sends for a pod, in one place for tests and the bench.

Shaped as `CreateV1AdmissionReview` builds it (shared/research/k8s-admission.md §1.1).
"""

from __future__ import annotations

SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"


def pod_review(pod: dict, *, uid: str = "7f0c", namespace: str = "data-airflow",
               username: str = SCHEDULER, operation: str = "CREATE",
               dry_run: bool = False, old_object: dict | None = None,
               sub_resource: str = "") -> dict:
    """A v1 AdmissionReview asking about `pod` (a CREATE unless told otherwise; an UPDATE
    names the pod before it as `old_object`)."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": meta.get("name", ""),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": username,
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod,
            "oldObject": old_object,
            **({"subResource": sub_resource} if sub_resource else {}),
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }
