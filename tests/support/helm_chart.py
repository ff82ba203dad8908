"""The Helm chart in deploy/helm, driven through helm-python-sdk (Helm v4 in-process, no helm
binary): render it, compare it with the kustomize base, install/upgrade it on a test API server.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from tests.support.paths import ROOT as REPO

CHART_DIR = REPO / "deploy" / "helm" / "airflow-pod-webhook"
IMAGE = "registry.io/team/airflow-pod-webhook"
IMAGE_VALUES = {"image": {"repository": IMAGE}}
POLICIES_CONFIGMAP = "airflow-pod-webhook-policies"
# What only Helm puts on objects; the selectors carry none of them.
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by",
               "app.kubernetes.io/version")


def load_chart() -> Any:
    import helm_python

    return helm_python.Chart.load(CHART_DIR)


def render(values: dict, *, release: str = "apw", namespace: str = "airflow-pod-webhook"
           ) -> list[dict]:
    """`helm template`: every object the chart renders, NOTES.txt left out."""
    rendered = load_chart().render(values, name=release, namespace=namespace)
    return [doc for path, text in sorted(rendered.items()) if path.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def notes(values: dict, *, release: str = "apw", namespace: str = "airflow-pod-webhook") -> str:
    rendered = load_chart().render(values, name=release, namespace=namespace)
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def comparable(objects: list[dict]) -> dict[tuple[str, str | None, str], dict]:
    """Objects keyed by (kind, namespace, name), without the documented differences between
    the chart and the kustomize base (deploy/helm/README.md):
    - the Namespace (kustomize creates it; Helm installs into one, --create-namespace);
    - the TLS Secret (the chart makes it; with kustomize, `kubectl create secret`);
    - Helm's own labels (HELM_LABELS);
    - the policies ConfigMap's name: kustomize appends a content hash, the chart keeps the
      name and rolls the pods with checksum annotations on the pod template instead;
    - caBundle (the chart fills it; the base leaves it to `manifests` or cert-manager).
    """
    out: dict[tuple[str, str | None, str], dict] = {}
    for original in objects:
        obj = copy.deepcopy(original)
        if obj["kind"] in ("Namespace", "Secret"):
            continue
        meta = obj["metadata"]
        for label in HELM_LABELS:
            meta.get("labels", {}).pop(label, None)
        if obj["kind"] == "ConfigMap" and meta["name"].startswith(POLICIES_CONFIGMAP):
            meta["name"] = POLICIES_CONFIGMAP
        pod_spec = _pod_template(obj)
        if pod_spec is not None:
            pod_spec["metadata"].pop("annotations", None)
            for volume in pod_spec["spec"].get("volumes", []):
                if volume.get("configMap", {}).get("name", "").startswith(POLICIES_CONFIGMAP):
                    volume["configMap"]["name"] = POLICIES_CONFIGMAP
        for hook in obj.get("webhooks", []):
            hook["clientConfig"].pop("caBundle", None)
        out[(obj["kind"], meta.get("namespace"), meta["name"])] = obj
    return out


def _pod_template(obj: dict) -> dict | None:
    if obj["kind"] == "Deployment":
        return obj["spec"]["template"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return None


def release_action(config: Any, action: str, chart: Any, release: str, values: dict,
                   namespace: str) -> dict:
    """helm install/upgrade through the library's native layer, with Helm's
    disable_openapi_validation: Helm's client-side schema check downloads the API server's
    OpenAPI document, which the envtest kube-apiserver does not serve ("failed to download
    openapi: the server is currently unable to handle the request"). The API server still
    validates every object it stores. (Helm's create_namespace option checks the Namespace
    it creates even so: create the release namespace first.)"""
    from helm_python import _native

    payload = _native.call_string(
        f"helm_{action}", config._raw(), _native.HANDLE(0), chart._raw(), None, release,
        json.dumps(values),
        json.dumps({"namespace": namespace, "disable_openapi_validation": True,
                    "timeout_seconds": 120}))
    return json.loads(payload)
