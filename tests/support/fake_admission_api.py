"""Fakes of the API server's admissionregistration.k8s.io/v1 for patch_ca_bundle: the
AdmissionregistrationV1Api methods it calls, backed by a dict, and a tiny HTTP server the real
kubernetes client can talk to (tests/test_registration.py, tests/test_ca_injection.py)."""

from __future__ import annotations

import base64
import copy
import json
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import jsonpatch

from webhook.cluster.registration import MUTATING_KIND, VALIDATING_KIND


class NotFound(Exception):
    status = 404


class Response:
    def __init__(self, obj: dict) -> None:
        self.data = json.dumps(obj).encode()


class FakeAdmissionApi:
    """The AdmissionregistrationV1Api methods patch_ca_bundle uses, backed by a dict."""

    def __init__(self, objects: list[dict] | None = None) -> None:
        self.store = {(o["kind"], o["metadata"]["name"]): copy.deepcopy(o) for o in objects or []}
        self.calls: list[tuple[str, str]] = []

    def _read(self, kind: str, name: str, **_: Any) -> Response:
        self.calls.append(("read", kind))
        if (kind, name) not in self.store:
            raise NotFound(name)
        return Response(self.store[kind, name])

    def _create(self, kind: str, body: dict, **_: Any) -> Response:
        self.calls.append(("create", kind))
        assert body["kind"] == kind
        self.store[kind, body["metadata"]["name"]] = copy.deepcopy(body)
        return Response(body)

    def _patch(self, kind: str, name: str, body: list, **kwargs: Any) -> Response:
        self.calls.append(("patch", kind))
        assert kwargs.get("_content_type") == "application/json-patch+json"
        self.store[kind, name] = jsonpatch.apply_patch(self.store[kind, name], body)
        return Response(self.store[kind, name])

    def read_mutating_webhook_configuration(self, name: str, **kw: Any) -> Response:
        return self._read(MUTATING_KIND, name, **kw)

    def read_validating_webhook_configuration(self, name: str, **kw: Any) -> Response:
        return self._read(VALIDATING_KIND, name, **kw)

    def create_mutating_webhook_configuration(self, body: dict, **kw: Any) -> Response:
        return self._create(MUTATING_KIND, body, **kw)

    def create_validating_webhook_configuration(self, body: dict, **kw: Any) -> Response:
        return self._create(VALIDATING_KIND, body, **kw)

    def patch_mutating_webhook_configuration(self, name: str, body: list, **kw: Any) -> Response:
        return self._patch(MUTATING_KIND, name, body, **kw)

    def patch_validating_webhook_configuration(self, name: str, body: list, **kw: Any) -> Response:
        return self._patch(VALIDATING_KIND, name, body, **kw)

    def bundle(self, kind: str, name: str = "airflow-pod-webhook") -> bytes:
        return base64.b64decode(self.store[kind, name]["webhooks"][0]["clientConfig"]["caBundle"])


class FakeApiServer(BaseHTTPRequestHandler):
    """Just enough of /apis/admissionregistration.k8s.io/v1 for get, create and JSON patch."""

    store: ClassVar[dict[tuple[str, str], dict]] = {}
    requests: ClassVar[list[tuple[str, str, str]]] = []
    PREFIX = "/apis/admissionregistration.k8s.io/v1/"
    KINDS = {
        "mutatingwebhookconfigurations": MUTATING_KIND,
        "validatingwebhookconfigurations": VALIDATING_KIND,
    }

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, code: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> tuple[str, str | None]:
        parts = self.path.split("?")[0].removeprefix(self.PREFIX).split("/")
        return self.KINDS[parts[0]], parts[1] if len(parts) > 1 else None

    def _body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        kind, name = self._route()
        self.requests.append(("GET", kind, ""))
        if (kind, name) in self.store:
            self._send(200, self.store[kind, name])
        else:
            self._send(404, {"kind": "Status", "apiVersion": "v1", "code": 404})

    def do_POST(self) -> None:
        kind, _ = self._route()
        body = self._body()
        self.requests.append(("POST", kind, self.headers["Content-Type"]))
        self.store[kind, body["metadata"]["name"]] = body
        self._send(201, body)

    def do_PATCH(self) -> None:
        kind, name = self._route()
        self.requests.append(("PATCH", kind, self.headers["Content-Type"]))
        self.store[kind, name] = jsonpatch.apply_patch(self.store[kind, name], self._body())
        self._send(200, self.store[kind, name])
