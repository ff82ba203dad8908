"""Serve a comparison app under exactly the webhook's gunicorn settings and TLS context.

    python -m bench.variant ceiling     --policies DIR --cert-dir DIR --port N ...
    python -m bench.variant single-call --policies DIR --cert-dir DIR --port N ...

- `ceiling`: the least a webhook can do: read the body, parse the AdmissionReview, answer a
  constant allow echoing its uid. Nothing the webhook does can be cheaper than this.
- `single-call`: the real app, with /mutate answered by review.MUTATE_AND_VALIDATE (the
  mutating call also validates the pod it produces), to measure that mode before it is wired.

Both subclass webhook.server.WebhookServer and only replace `load()`, so workers, threads,
keep-alive, timeouts and the reloading TLS context are the webhook's own.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from webhook import app as webhook_app
from webhook import review
from webhook.policy.store import PolicyStore
from webhook.server import ServeOptions, WebhookServer, configure_logging

VARIANTS = ("ceiling", "single-call")


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


def single_call_answer(hook: str, body: Any, policies: Any) -> tuple[int, dict, Any]:
    """/mutate answers as the single-call hook would; /validate is unchanged."""
    return review.answer(review.MUTATE_AND_VALIDATE if hook == review.MUTATE else hook,
                         body, policies)


class VariantServer(WebhookServer):
    def __init__(self, options: ServeOptions, variant: str) -> None:
        self.variant = variant
        super().__init__(options)

    def load(self) -> Any:
        configure_logging(self.options.log_level)
        if self.variant == "ceiling":
            return ceiling_app()
        # Bench-only: the app module looks `answer` up at call time, so this reroutes /mutate.
        webhook_app.answer = single_call_answer
        store = PolicyStore(self.options.policies, interval=self.options.reload_interval)
        store.reload_if_changed()
        store.watch()
        return webhook_app.create_app(store)


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
