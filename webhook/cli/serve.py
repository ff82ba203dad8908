"""`serve`: the hooks over HTTPS (gunicorn), with development certs when none are given.

The serving stack (flask, gunicorn: the [server] extra), the certificates (cryptography) and
the caBundle injector (the kubernetes client) are imported inside `cmd_serve`: they are
optional dependencies, which `main` names as a `pip install` hint when absent, and no other
command (nor `--help`) loads them. An optional dependency boundary, not a cycle dodge.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webhook.budget import HOLD_REFUSALS_SECONDS
from webhook.cli.common import (
    DEFAULT_CERT_DIR,
    DEFAULT_NAMESPACE,
    DEFAULT_POLICIES,
    DEFAULT_SERVICE,
    EXIT_OK,
    InputError,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="serve /mutate and /validate over HTTPS (gunicorn)")
    serve.add_argument("--policies", default=DEFAULT_POLICIES, help="policy folder")
    serve.add_argument("--cert-dir", default=DEFAULT_CERT_DIR,
                       help="tls.crt/tls.key (generated with a dev CA when absent)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--threads", type=int, default=8,
                       help="per worker; a TLS handshake holds a thread until its first request")
    serve.add_argument("--service", default=DEFAULT_SERVICE, help="for generated dev certs")
    serve.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="for generated dev certs")
    serve.add_argument("--reload-interval", type=float, default=2.0,
                       help="seconds between policy folder checks")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--patch-ca-bundle", action="store_true",
                       help="keep the caBundle of our own webhook configurations trusting "
                            "<cert-dir>/ca.crt (in-cluster ServiceAccount, or $KUBECONFIG)")
    serve.add_argument("--ca-poll-interval", type=float, default=5.0,
                       help="seconds between checks of ca.crt with --patch-ca-bundle")
    serve.add_argument("--client-ca", default=None,
                       help="mutual TLS: review calls must present a client certificate "
                            "signed by this CA (see `certs --apiserver-client`); /healthz, "
                            "/readyz and /metrics need none")
    serve.add_argument("--hold-refusals", type=float, default=HOLD_REFUSALS_SECONDS,
                       metavar="SECONDS",
                       help="answer refusals no real caller gets (a pod over the caps, a call "
                            "without the client certificate) this long after they arrived "
                            "(default %(default)s; 0: at once): fewer oversized creates a "
                            "second for kube-apiserver to decode, fewer handshakes for us "
                            "(docs/benchmarks.md)")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from webhook.cluster.certs import ensure_dev_certs
    from webhook.serving.server import ServeOptions, configure_logging, serve

    configure_logging(args.log_level)  # the master loads the policies and logs their errors
    if not Path(args.policies).is_dir():
        # A broken folder keeps serving the last good set; a missing one is a wrong flag.
        raise InputError(f"--policies {args.policies} is not a folder of policy files")
    try:
        paths, generated = ensure_dev_certs(Path(args.cert_dir), args.service, args.namespace)
    except (OSError, ValueError) as exc:
        raise InputError(f"certificates in {args.cert_dir}: {exc}") from exc
    if generated:
        print(f"generated a development CA and serving cert in {paths.directory}/ "
              f"(CA: {paths.ca_crt}); use real certs in production", file=sys.stderr)
    if args.patch_ca_bundle:
        from webhook.cluster.ca_injection import (
            CABundleInjector,
            InjectorSettings,
            kubernetes_patcher,
        )

        # Started in the gunicorn master before it forks: one injector per replica, and the
        # workers (forked later) do not inherit the thread.
        CABundleInjector(
            paths.ca_crt, kubernetes_patcher(service=args.service, namespace=args.namespace),
            InjectorSettings(poll_interval=args.ca_poll_interval)).start()
    client_ca = Path(args.client_ca) if args.client_ca else None
    if client_ca is not None and not client_ca.is_file():
        raise InputError(f"--client-ca {client_ca} is not a file (write one with "
                         "`airflow-pod-webhook certs --apiserver-client`)")
    serve(ServeOptions(policies=Path(args.policies), certfile=paths.tls_crt,
                       keyfile=paths.tls_key, host=args.host, port=args.port,
                       workers=args.workers, threads=args.threads,
                       reload_interval=args.reload_interval, log_level=args.log_level,
                       client_ca=client_ca, hold_refusals=args.hold_refusals))
    return EXIT_OK
