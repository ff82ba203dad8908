"""The writes real Airflow sends to live pods (tests/fixtures/airflow-requests/), and the
AdmissionReview kube-apiserver builds from each: shared by the offline and the e2e tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "airflow-requests"
VERSIONS = ("2.10.5", "3.3.2")
OPERATIONS = {"PATCH": "UPDATE", "PUT": "UPDATE", "DELETE": "DELETE", "POST": "CREATE"}
OPTIONS = {"UPDATE": "PatchOptions", "DELETE": "DeleteOptions", "CREATE": "CreateOptions"}


def load_requests(version: str) -> dict[str, dict]:
    """{file name: document} for one Airflow version, in the order Airflow sent them."""
    folder = FIXTURES / version
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def admission_review(document: dict, uid: str = "airflow-write") -> dict:
    """The v1 AdmissionReview kube-apiserver sends a webhook registered for this write: a
    PATCH is an UPDATE with the pod before (oldObject) and after (object), a DELETE has only
    oldObject, and options are the request's PatchOptions / DeleteOptions."""
    request = document["request"]
    operation = OPERATIONS[request["method"]]
    path = request["path"].strip("/").split("/")
    namespace, name = path[3], path[5]
    sub_resource = path[6] if len(path) > 6 else ""
    old = document["old_object"]
    new = document["response"] if operation == "UPDATE" else None
    options: dict[str, Any] = {"apiVersion": "meta.k8s.io/v1", "kind": OPTIONS[operation]}
    if operation == "DELETE" and isinstance(request["body"], dict):
        options.update({k: v for k, v in request["body"].items()
                        if k not in ("apiVersion", "kind")})
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    review_request: dict[str, Any] = {
        "uid": uid,
        "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": name, "namespace": namespace, "operation": operation,
        "userInfo": {"username": request["user"],
                     "uid": "8d3c2b1a-0000-4000-8000-000000000000",
                     "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                "system:authenticated"]},
        "object": new, "oldObject": old, "dryRun": False, "options": options,
    }
    if sub_resource:
        review_request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": review_request}


def registered_operations(configurations: list[dict]) -> dict[str, set[str]]:
    """{webhook name: operations its rules send for pods (no subresource)}."""
    asked: dict[str, set[str]] = {}
    for configuration in configurations:
        for hook in configuration["webhooks"]:
            for rule in hook["rules"]:
                if {"pods", "*"} & set(rule["resources"]):
                    asked.setdefault(hook["name"], set()).update(rule["operations"])
    return asked
