"""Serve a comparison app under exactly the webhook's gunicorn settings and TLS context.

    python -m bench.variant ceiling --policies DIR --cert-dir DIR --port N ...

`ceiling`: the least a Flask webhook can do: read the body, parse the AdmissionReview, answer
a constant allow echoing its uid. It subclasses webhook.server.WebhookServer and only replaces
`load()`, so workers, threads, keep-alive, timeouts and the reloading TLS context are the
webhook's own. (The single-call mode is the real server's /mutate-validate endpoint.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from webhook.server import ServeOptions, WebhookServer, configure_logging

VARIANTS = ("ceiling",)


def ceiling_app() -> Flask:
    """Parse the review, answer a constant allow: the floor under any webhook's cost."""
    app = Flask("ceiling")

    def allow() -> Response:
        body: Any = json.loads(request.get_data())
        answer = {"apiVersion": body.get("apiVersion", "admission.k8s.io/v1"),
                  "kind": "AdmissionReview",
                  "response": {"uid": body["request"]["uid"], "allowed": True}}
        return Response(json.dumps(answer, separators=(",", ":")), mimetype="application/json")

    app.add_url_rule("/mutate", "mutate", allow, methods=["POST"])
    app.add_url_rule("/validate", "validate", allow, methods=["POST"])
    app.add_url_rule("/readyz", "readyz", lambda: Response('{"status":"ready"}',
                                                           mimetype="application/json"))
    return app


class VariantServer(WebhookServer):
    def __init__(self, options: ServeOptions, variant: str) -> None:
        self.variant = variant
        super().__init__(options)

    def load(self) -> Any:
        configure_logging(self.options.log_level)
        return ceiling_app()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.variant")
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--policies", required=True)
    parser.add_argument("--cert-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=ServeOptions.workers)
    parser.add_argument("--threads", type=int, default=ServeOptions.threads)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    certs = Path(args.cert_dir)
    options = ServeOptions(policies=Path(args.policies), certfile=certs / "tls.crt",
                           keyfile=certs / "tls.key", host=args.host, port=args.port,
                           workers=args.workers, threads=args.threads,
                           log_level=args.log_level)
    VariantServer(options, args.variant).run()


if __name__ == "__main__":
    main()
