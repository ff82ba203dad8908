"""AdmissionReview in, AdmissionReview out (admission.k8s.io/v1), as kube-apiserver expects.

Pure functions: the Flask app only moves bytes. See shared research, k8s-admission.md §1:
the response must echo the request's uid, apiVersion and kind; `allowed` must be present; a
patch is base64 of an RFC 6902 array with patchType JSONPatch; warnings and auditAnnotations
have limits of their own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

try:  # the server extra: 2-3x the stdlib's speed on the review parsed on every call
    import orjson
except ImportError:  # the base install (offline commands in an Airflow image)
    orjson = None  # type: ignore[assignment]

from webhook.kube.messages import clip_message, fit_warnings
from webhook.kube.pod_fields import QUALIFIED_NAME

SUPPORTED_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")


# What the server accepts, shared with the offline CLI so both accept the same input.
MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's own request size cap
MAX_JSON_DEPTH = 1024  # orjson's nesting limit; the stdlib fallback holds to the same
# Only a hostile object recurses this deep: a pod kube-apiserver decoded into its typed struct
# is a dozen levels deep at most.
NESTED_TOO_DEEPLY = "request.object is nested too deeply to be a Kubernetes object"


class BodyError(ValueError):
    """A request body we will not judge: too large or not JSON (HTTP `status`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def body_too_large() -> BodyError:
    return BodyError(413, f"request body is larger than {MAX_BODY_BYTES} bytes")


def decode_body(data: bytes | None) -> Any:
    """A review body as the server reads it: None (read past the cap) or more than
    MAX_BODY_BYTES is 413; not JSON, not UTF-8 or nested past 1024 levels is 400."""
    if data is None or len(data) > MAX_BODY_BYTES:
        raise body_too_large()
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BodyError(400, f"body is not valid JSON: {exc}") from exc
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BodyError(400, f"body is not valid JSON: {_json_problem(exc)}") from exc
    if _deeper_than(body, MAX_JSON_DEPTH):
        raise BodyError(400, "body is not valid JSON: depth limit exceeded")
    return body


def _json_problem(exc: Exception) -> str:
    return "depth limit exceeded" if isinstance(exc, RecursionError) else str(exc)


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict)
                                                   else node))
    return False


class BadReview(ValueError):
    """The body is not an AdmissionReview we can answer: HTTP 400 naming the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class AdmissionRequest:
    api_version: str
    uid: str
    kind: Mapping[str, Any]
    resource: Mapping[str, Any]
    sub_resource: str
    operation: str
    namespace: str
    name: str
    username: str | None
    object: Any
    dry_run: bool
    old_object: Any = None

    @property
    def is_pod_write(self) -> bool:
        """A later write to a pod: an UPDATE of the pod or of a subresource that changes what
        runs or where (ephemeralcontainers, resize), or a binding (CREATE pods/binding)."""
        if not isinstance(self.object, dict) or self.resource.get("group", "") != "":
            return False
        if self.resource.get("resource") != "pods":
            return False
        if self.operation == "UPDATE":
            return self.sub_resource in ("", "ephemeralcontainers", "resize")
        return self.operation == "CREATE" and self.sub_resource == "binding"

    @property
    def is_pod_connect(self) -> bool:
        """A command run in a pod's container (CONNECT pods/exec or pods/attach): the object is
        the PodExecOptions / PodAttachOptions, naming the container."""
        return (self.operation == "CONNECT" and self.resource.get("group", "") == ""
                and self.resource.get("resource") == "pods"
                and self.sub_resource in ("exec", "attach") and isinstance(self.object, dict))

    @property
    def is_pod_create(self) -> bool:
        """A Pod CREATE: what the mutating hook acts on (later writes are only judged)."""
        return (
            self.operation == "CREATE"
            and self.kind.get("kind") == "Pod"
            and self.kind.get("group", "") == ""
            and not self.sub_resource
            and isinstance(self.object, dict)
        )


def parse_review(body: Any) -> AdmissionRequest:
    """Check and unpack a decoded AdmissionReview; raises BadReview naming the bad field."""
    if not isinstance(body, dict):
        raise BadReview("<body>", "must be a JSON object (an AdmissionReview)")
    if body.get("kind") != "AdmissionReview":
        raise BadReview("kind", f"must be AdmissionReview, got {_short(body.get('kind'))}")
    version = body.get("apiVersion")
    if version not in SUPPORTED_VERSIONS:
        raise BadReview("apiVersion", f"must be admission.k8s.io/v1, got {_short(version)}")
    request = body.get("request")
    if not isinstance(request, dict):
        raise BadReview("request", "must be an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid", "must be a non-empty string")
    kind = request.get("kind")
    if not isinstance(kind, dict):
        raise BadReview("request.kind", "must be an object like {group, version, kind}")
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        raise BadReview("request.operation", f"must be CREATE, UPDATE, DELETE or CONNECT, "
                        f"got {_short(operation)}")
    user = request.get("userInfo") if isinstance(request.get("userInfo"), dict) else {}
    username = user.get("username") if isinstance(user.get("username"), str) else None
    return AdmissionRequest(
        api_version=version,
        uid=uid,
        kind=kind,
        resource=request.get("resource") if isinstance(request.get("resource"), dict) else {},
        sub_resource=_str(request.get("subResource")),
        operation=operation,
        namespace=_str(request.get("namespace")),
        name=_str(request.get("name")),
        username=username,
        object=request.get("object"),
        dry_run=request.get("dryRun") is True,
        old_object=request.get("oldObject"),
    )


def review_uid(body: Any) -> tuple[str, str] | None:
    """(apiVersion, uid) when a bad review still names them, so a denial can be addressed."""
    if not isinstance(body, dict) or not isinstance(body.get("request"), dict):
        return None
    uid, version = body["request"].get("uid"), body.get("apiVersion")
    if isinstance(uid, str) and uid and version in SUPPORTED_VERSIONS:
        return version, uid
    return None


def allow(request: AdmissionRequest, *, patch: list[dict] | None = None,
          warnings: Iterable[str] = (), audit: Mapping[str, str] | None = None) -> dict:
    return allow_uid(request.api_version, request.uid, patch=patch, warnings=warnings,
                     audit=audit)


def allow_uid(api_version: str, uid: str, *, patch: list[dict] | None = None,
              warnings: Iterable[str] = (), audit: Mapping[str, str] | None = None) -> dict:
    """An allow for a review known only by its version and uid (a request we could not parse)."""
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = encode_patch(patch)
    return _review(api_version, response, warnings, audit)


def deny(api_version: str, uid: str, code: int, message: str, *,
         warnings: Iterable[str] = (), audit: Mapping[str, str] | None = None,
         reason: str = "Forbidden") -> dict:
    response = {
        "uid": uid,
        "allowed": False,
        "status": {
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": clip_message(message),
        },
    }
    return _review(api_version, response, warnings, audit)


def _review(api_version: str, response: dict, warnings: Iterable[str],
            audit: Mapping[str, str] | None) -> dict:
    fitted = fit_warnings(warnings)
    if fitted:
        response["warnings"] = fitted
    clean_audit = audit_annotations(audit or {})
    if clean_audit:
        response["auditAnnotations"] = clean_audit
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}


def encode_patch(patch: list[dict]) -> str:
    # allow_nan=False: a NaN in a patch would be invalid JSON; raising fails the review closed.
    return base64.b64encode(json.dumps(patch, separators=(",", ":"), allow_nan=False)
                            .encode()).decode()


def audit_annotations(audit: Mapping[str, str]) -> dict[str, str]:
    """Keys kube-apiserver would drop (a `/`, not a qualified name) are never sent."""
    return {k: str(v) for k, v in audit.items()
            if isinstance(k, str) and len(k) <= 63 and QUALIFIED_NAME.match(k)}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
