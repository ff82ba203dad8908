"""Serve a comparison app under exactly the webhook's gunicorn settings and TLS context.

    python -m bench.variant ceiling --policies DIR --cert-dir DIR --port N ...

`ceiling`: the least a Flask webhook can do: read the body, parse the AdmissionReview, answer
a constant allow echoing its uid. `ceiling-patch`: the same, but /mutate answers with a fixed
JSONPatch (`--patch-file`, base64 as in the answer): what applying our patch costs
kube-apiserver, without any policy work of ours. Both subclass webhook.server.WebhookServer
and only replace `load()`, so workers, threads, keep-alive, timeouts and the reloading TLS
context are the webhook's own. (Single-call mode is the real server's /mutate-validate.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from webhook.server import ServeOptions, WebhookServer, configure_logging

VARIANTS = ("ceiling", "ceiling-patch")


def ceiling_app(patch: str | None = None) -> Flask:
    """Parse the review, answer a constant allow: the floor under any webhook's cost.

    With `patch` (base64 of a JSONPatch), /mutate's allow carries it.
    """
    app = Flask("ceiling")

    def answer(extra: dict) -> Response:
        body: Any = json.loads(request.get_data())
        answer = {"apiVersion": body.get("apiVersion", "admission.k8s.io/v1"),
                  "kind": "AdmissionReview",
                  "response": {"uid": body["request"]["uid"], "allowed": True, **extra}}
        return Response(json.dumps(answer, separators=(",", ":")), mimetype="application/json")

    patched = {"patchType": "JSONPatch", "patch": patch} if patch else {}
    app.add_url_rule("/mutate", "mutate", lambda: answer(patched), methods=["POST"])
    app.add_url_rule("/validate", "validate", lambda: answer({}), methods=["POST"])
    app.add_url_rule("/readyz", "readyz", lambda: Response('{"status":"ready"}',
                                                           mimetype="application/json"))
    return app


class VariantServer(WebhookServer):
    def __init__(self, options: ServeOptions, variant: str, patch: str | None = None) -> None:
        self.variant = variant
        self.patch = patch
        super().__init__(options)

    def load(self) -> Any:
        configure_logging(self.options.log_level)
        return ceiling_app(self.patch)


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
    parser.add_argument("--patch-file", help="ceiling-patch: base64 JSONPatch for /mutate")
    args = parser.parse_args(argv)
    if (args.variant == "ceiling-patch") != bool(args.patch_file):
        parser.error("--patch-file goes with ceiling-patch, and only with it")
    certs = Path(args.cert_dir)
    options = ServeOptions(policies=Path(args.policies), certfile=certs / "tls.crt",
                           keyfile=certs / "tls.key", host=args.host, port=args.port,
                           workers=args.workers, threads=args.threads,
                           log_level=args.log_level)
    patch = Path(args.patch_file).read_text().strip() if args.patch_file else None
    VariantServer(options, args.variant, patch).run()


if __name__ == "__main__":
    main()
