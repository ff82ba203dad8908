"""Serve a comparison app under exactly the webhook's gunicorn settings and TLS context.

    python -m bench.variant ceiling --policies DIR --cert-dir DIR --port N ...

`ceiling`: the least a Flask webhook can do: read the body, parse the AdmissionReview, answer
a constant allow echoing its uid. `ceiling-replay`: the same, but each hook answers with the
fixed answer our webhook gives one pod (`--answers-file`: {"mutate": response, "validate":
response}, uid aside): what our answers (patch, warnings, audit annotations) cost
kube-apiserver, without any policy work of ours. Both subclass webhook.serving.server.WebhookServer
and only replace `load()`, so workers, threads, keep-alive, timeouts and the reloading TLS
context are the webhook's own. (Single-call mode is the real server's /mutate-validate.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from webhook.serving.server import ServeOptions, WebhookServer, configure_logging

VARIANTS = ("ceiling", "ceiling-replay")


def ceiling_app(answers: dict | None = None) -> Flask:
    """Parse the review, answer a constant allow: the floor under any webhook's cost.

    With `answers` ({"mutate": response, "validate": response}), each hook's answer carries
    that response's fields.
    """
    app = Flask("ceiling")

    def answer(extra: dict) -> Response:
        body: Any = json.loads(request.get_data())
        answer = {"apiVersion": body.get("apiVersion", "admission.k8s.io/v1"),
                  "kind": "AdmissionReview",
                  "response": {"uid": body["request"]["uid"], "allowed": True, **extra}}
        return Response(json.dumps(answer, separators=(",", ":")), mimetype="application/json")

    def fixed(hook: str) -> dict:
        response = dict((answers or {}).get(hook, {}))
        response.pop("uid", None)
        return response

    mutate, validate = fixed("mutate"), fixed("validate")
    app.add_url_rule("/mutate", "mutate", lambda: answer(mutate), methods=["POST"])
    app.add_url_rule("/validate", "validate", lambda: answer(validate), methods=["POST"])
    app.add_url_rule("/readyz", "readyz", lambda: Response('{"status":"ready"}',
                                                           mimetype="application/json"))
    return app


class VariantServer(WebhookServer):
    def __init__(self, options: ServeOptions, variant: str, answers: dict | None = None
                 ) -> None:
        self.variant = variant
        self.answers = answers
        super().__init__(options)

    def load(self) -> Any:
        configure_logging(self.options.log_level)
        return ceiling_app(self.answers)


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
    parser.add_argument("--answers-file", help="ceiling-replay: the answers to give (JSON)")
    args = parser.parse_args(argv)
    if (args.variant == "ceiling-replay") != bool(args.answers_file):
        parser.error("--answers-file goes with ceiling-replay, and only with it")
    certs = Path(args.cert_dir)
    options = ServeOptions(policies=Path(args.policies), certfile=certs / "tls.crt",
                           keyfile=certs / "tls.key", host=args.host, port=args.port,
                           workers=args.workers, threads=args.threads,
                           log_level=args.log_level)
    answers = json.loads(Path(args.answers_file).read_text()) if args.answers_file else None
    VariantServer(options, args.variant, answers).run()


if __name__ == "__main__":
    main()
