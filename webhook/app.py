"""The Flask app: HTTP in and out around webhook.review; nothing is decided here."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from webhook import admission
from webhook import metrics as m
from webhook.decision_log import log_decision
from webhook.policy.store import PolicyStore
from webhook.review import (
    MUTATE,
    MUTATE_AND_VALIDATE,
    VALIDATE,
    Decision,
    answer,
    error_body,
    last_resort,
)

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's own request size cap
log = logging.getLogger("airflow_pod_webhook.http")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_timeout(text: str | None) -> float | None:
    """kube-apiserver's `?timeout=` is a Go duration such as `10s` or `1m30s`."""
    if not text:
        return None
    total, rest = 0.0, text
    while rest:
        m = re.match(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", rest)
        if not m:
            raise ValueError(f"timeout {text!r} is not a duration such as 10s")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        rest = rest[m.end():]
    return total


def read_body(stream: Any, length: int | None) -> bytes | None:
    """The body, or None past the cap; an oversized body is drained (within bounds) so the
    client reads our 413 instead of a reset connection."""
    if length is not None and length > MAX_BODY_BYTES:
        _drain(stream, min(length, 4 * MAX_BODY_BYTES))
        return None
    data = stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        _drain(stream, 3 * MAX_BODY_BYTES)
        return None
    return data


def _drain(stream: Any, limit: int) -> None:
    while limit > 0:
        chunk = stream.read(min(65536, limit))
        if not chunk:
            return
        limit -= len(chunk)


def too_deep(hook: str, body: Any) -> tuple[int, dict, Decision]:
    """A review whose object nests deeper than Python recursion allows: refused, not a bug."""
    message = "request.object is nested too deeply to be a Kubernetes object"
    decision = Decision(hook, "invalid", reason=message)
    named = admission.review_uid(body)
    if named is None:
        return 400, error_body(message), decision
    version, uid = named
    return 200, admission.deny(version, uid, 400, f"bad AdmissionReview: {message}",
                               reason="BadRequest"), decision


def create_app(store: PolicyStore, metrics: m.WebhookMetrics | None = None) -> Flask:
    """The WSGI app around `store`; `metrics` defaults to a private registry (tests)."""
    app = Flask("airflow_pod_webhook")
    metrics = metrics if metrics is not None else m.WebhookMetrics()

    def reply(status: int, body: dict) -> Response:
        return Response(json.dumps(body, separators=(",", ":")), status=status,
                        mimetype="application/json")

    def review(hook: str) -> Response:
        started = time.perf_counter()
        # The body is read (or drained) before any answer, even a refusal: gunicorn drains
        # at most 64 KiB of an unread body and then silently closes a kept-alive connection,
        # which the API server's next request on it would see as a failed call.
        data = read_body(request.stream, request.content_length)
        try:
            budget = parse_timeout(request.args.get("timeout"))
        except ValueError as exc:
            budget = None
            status, payload, decision, outcome = rejected(hook, 400, str(exc))
        else:
            status, payload, decision, outcome = answer_request(hook, data)
        elapsed = time.perf_counter() - started
        if budget is not None and elapsed > budget:
            metrics.deadline_exceeded(hook)
            log.warning("%s answered after the API server's %.1fs timeout (%.3fs)",
                        hook, budget, elapsed)
        metrics.admission(hook, decision.decision, outcome, elapsed, decision.patch_ops)
        log_decision(decision, elapsed)
        return reply(status, payload)

    def answer_request(hook: str, data: bytes | None) -> tuple[int, dict, Decision, str]:
        """(HTTP status, body, decision, outcome) for one review request."""
        if request.mimetype != "application/json":
            return rejected(hook, 415, "Content-Type must be application/json, got "
                            f"{request.mimetype or 'none'}")
        if data is None:
            return rejected(hook, 413, f"request body is larger than {MAX_BODY_BYTES} bytes")
        try:
            body: Any = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            return rejected(hook, 400, f"body is not valid JSON: {exc}")
        except RecursionError:  # json recurses per nesting level: a hostile body, not a bug
            return rejected(hook, 400, "body is not valid JSON: nested too deeply")
        try:
            status, payload, decision = answer(hook, body, store.current)
        except RecursionError:
            # Only a hostile object recurses this deep: a pod kube-apiserver decoded into its
            # typed struct is a dozen levels deep at most.
            return (*too_deep(hook, body), m.REJECTED)
        except Exception:  # a bug of ours must not become a 500 the user cannot read
            log.exception("%s: unexpected error", hook)
            return (*last_resort(hook, body), m.ERROR)
        outcome = m.ANSWERED if status == 200 else m.NOT_READY if status == 503 else m.REJECTED
        return status, payload, decision, outcome

    def rejected(hook: str, status: int, message: str) -> tuple[int, dict, Decision, str]:
        return status, error_body(message), Decision(hook, "invalid", reason=message), m.REJECTED

    @app.post("/mutate")
    def mutate() -> Response:
        return review(MUTATE)

    @app.post("/validate")
    def validate() -> Response:
        return review(VALIDATE)

    @app.post("/mutate-validate")
    def mutate_validate() -> Response:
        # Single-call mode: one round trip per pod create (see README, trade-offs).
        return review(MUTATE_AND_VALIDATE)

    @app.get("/healthz")
    def healthz() -> Response:
        return reply(200, {"status": "ok"})

    @app.get("/metrics")
    def metrics_page() -> Response:
        text, content_type = metrics.exposition()
        return Response(text, status=200, content_type=content_type)

    @app.get("/readyz")
    def readyz() -> Response:
        state = store.state
        detail: dict[str, Any] = {
            "revision": state.policy_set.revision if state.policy_set else None,
            "errors": [str(e) for e in state.errors],
        }
        if state.failed_revision:
            detail["failed_revision"] = state.failed_revision
        if state.policy_set is None:
            return reply(503, {"status": "not ready: no valid policy set loaded", **detail})
        return reply(200, {"status": "ready", **detail})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # 404, 405 ... as JSON, like every other answer.
        return reply(exc.code or 500, error_body(exc.description or exc.name))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return reply(500, error_body(f"internal error: {type(exc).__name__}"))

    return app
