"""A second mutating webhook, served in-process over TLS, that kube-apiserver calls after ours.

It stands for the injectors clusters really run (service-mesh sidecars, secret injectors):
what it does to a pod is chosen by the pod's `MODE_ANNOTATION`, and it acts only on pods with
`MODE_ANNOTATION` set (an objectSelector on the `SELECT_LABEL` label keeps others away).
kube-apiserver calls mutating webhooks configuration by configuration in name order, so
`CONFIGURATION` sorts after `airflow-pod-webhook`; when it changes the pod, our hook (with
`reinvocationPolicy: IfNeeded`) runs once more.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from webhook.cluster.certs import generate_ca, generate_serving_cert

CONFIGURATION = "zz-e2e-injector"
WEBHOOK = "inject.e2e.airflow-pod-webhook.io"
SELECT_LABEL = "e2e-inject"
MODE_ANNOTATION = "e2e.airflow-pod-webhook.io/inject"
# A mesh proxy as injectors add it, with its own resources (istio's defaults): the envelope
# refuses a container without a memory limit (envelope: limits).
SIDECAR = {"name": "injected-proxy", "image": "envoyproxy/envoy:v1.31.0",
           "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                         "limits": {"cpu": "2", "memory": "1Gi"}}}
HOST_PATH = {"name": "injected-host", "hostPath": {"path": "/var/run/injected"}}
# What the injector can do to a pod, one per test.
MODES = ("sidecar", "unconfined-seccomp", "host-path")


def patch_for(mode: str, pod: dict) -> list[dict[str, Any]]:
    """What the injector does to `pod` in `mode` (after our hook ran on it)."""
    spec = pod.get("spec") or {}
    if mode == "sidecar":
        if any(c.get("name") == SIDECAR["name"] for c in spec.get("containers") or []):
            return []  # already injected: an injector must be idempotent
        return [{"op": "add", "path": "/spec/containers/-", "value": SIDECAR}]
    if mode == "unconfined-seccomp":
        # A field our template locks (spec.securityContext.seccompProfile).
        ops = [] if "securityContext" in spec else [
            {"op": "add", "path": "/spec/securityContext", "value": {}}]
        return [*ops, {"op": "add", "path": "/spec/securityContext/seccompProfile",
                       "value": {"type": "Unconfined"}}]
    if mode == "host-path":
        ops = [] if "volumes" in spec else [{"op": "add", "path": "/spec/volumes", "value": []}]
        return [*ops, {"op": "add", "path": "/spec/volumes/-", "value": HOST_PATH}]
    return []


class SideWebhook:
    """Serve the injector on 127.0.0.1 over TLS; register and unregister it."""

    def __init__(self, workdir: Path) -> None:
        self.ca, ca_key = generate_ca("e2e-injector-ca", days=1)
        cert, key = generate_serving_cert(self.ca, ca_key, "e2e-injector", "default", days=1)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "tls.crt").write_bytes(cert)
        (workdir / "tls.key").write_bytes(key)
        (workdir / "tls.key").chmod(0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(workdir / "tls.crt", workdir / "tls.key")
        self.calls: list[tuple[str, str]] = []  # (pod name or generateName, mode)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as kube-apiserver expects

            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = review["request"]
                pod = request["object"]
                meta = pod.get("metadata") or {}
                mode = (meta.get("annotations") or {}).get(MODE_ANNOTATION, "")
                owner.calls.append((meta.get("name") or meta.get("generateName", ""), mode))
                response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
                patch = patch_for(mode, pod)
                if patch:
                    response["patchType"] = "JSONPatch"
                    response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
                body = json.dumps({"apiVersion": "admission.k8s.io/v1",
                                   "kind": "AdmissionReview", "response": response}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}/inject"

    def configuration(self) -> dict[str, Any]:
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": CONFIGURATION},
            "webhooks": [{
                "name": WEBHOOK,
                "clientConfig": {"url": self.url,
                                 "caBundle": base64.b64encode(self.ca).decode()},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["pods"], "scope": "Namespaced"}],
                "objectSelector": {"matchLabels": {SELECT_LABEL: "true"}},
                # Not kube-system, where tests dry-run pods to learn the API server's defaults.
                "namespaceSelector": {"matchExpressions": [{
                    "key": "kubernetes.io/metadata.name", "operator": "NotIn",
                    "values": ["kube-system"]}]},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 5,
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": "Never",
            }],
        }

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def injected(pod: dict, mode: str) -> dict:
    """`pod` marked for the injector in `mode`."""
    meta = pod["metadata"]
    meta.setdefault("labels", {})[SELECT_LABEL] = "true"
    meta.setdefault("annotations", {})[MODE_ANNOTATION] = mode
    return pod
