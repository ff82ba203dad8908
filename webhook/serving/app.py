"""The HTTP app: review endpoints (webhook.serving.review_endpoints) plus Flask for the rest.

Nothing is decided here: health, readiness and metrics pages, and JSON errors.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from webhook.budget import HOLD_REFUSALS_SECONDS
from webhook.policy.store import PolicyStore
from webhook.review import error_body
from webhook.serving import metrics as m
from webhook.serving.review_endpoints import ReviewEndpoints

log = logging.getLogger("airflow_pod_webhook.http")


def create_app(store: PolicyStore, metrics: m.WebhookMetrics | None = None, *,
               require_client_cert: bool = False,
               hold_refusals: float = HOLD_REFUSALS_SECONDS) -> Flask:
    """The WSGI app around `store`; `metrics` defaults to a private registry (tests). With
    `require_client_cert`, reviews come only from a caller whose TLS client certificate
    verified (mutual TLS with kube-apiserver)."""
    app = Flask("airflow_pod_webhook")
    metrics = metrics if metrics is not None else m.WebhookMetrics()
    # The review paths are answered below Flask, on the hot path; Flask serves the rest.
    app.wsgi_app = ReviewEndpoints(  # type: ignore[method-assign]
        app.wsgi_app, store, metrics, require_client_cert=require_client_cert,
        hold_refusals=hold_refusals)

    def reply(status: int, body: dict) -> Response:
        return Response(json.dumps(body, separators=(",", ":")), status=status,
                        mimetype="application/json")

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
