"""`certs`: write a CA and a serving cert (renewing keeps the CA), and with
`--apiserver-client` kube-apiserver's client certificate for mutual TLS.

webhook.cluster.certs needs cryptography (the [server] extra), so it is imported inside
`cmd_certs`: `main` names the extra when it is absent, and no other command loads it. An
optional dependency boundary, not a cycle dodge.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from webhook.cli.common import (
    DEFAULT_CERT_DIR,
    DEFAULT_NAMESPACE,
    DEFAULT_SERVICE,
    EXIT_OK,
    InputError,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    certs = sub.add_parser("certs", help="write a CA and a serving cert (renews, keeps the CA)")
    certs.add_argument("--service", default=DEFAULT_SERVICE)
    certs.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    certs.add_argument("--out", default=DEFAULT_CERT_DIR)
    certs.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa")
    certs.add_argument("--days", type=int, default=365)
    certs.add_argument("--apiserver-client", action="store_true",
                       help="also write a client CA (for serve --client-ca), kube-apiserver's "
                            "client cert, its kubeconfig and the AdmissionConfiguration for "
                            "--admission-control-config-file")
    certs.add_argument("--webhook-host", action="append", default=None,
                       help="with --apiserver-client: a name the API server calls the webhook "
                            "by (default <service>.<namespace>.svc; host:port for a url "
                            "registration on a port other than 443); repeatable")
    certs.add_argument("--kubeconfig-path",
                       default="/etc/kubernetes/airflow-pod-webhook/admission-kubeconfig.yaml",
                       help="with --apiserver-client: where the API server will read the "
                            "kubeconfig (written into the AdmissionConfiguration)")
    certs.set_defaults(func=cmd_certs)


def cmd_certs(args: argparse.Namespace) -> int:
    from webhook.cluster.certs import cert_dns_names, cert_not_after, write_certs

    try:
        paths = write_certs(Path(args.out), args.service, args.namespace, args.key_type,
                            args.days)
    except (OSError, ValueError) as exc:
        raise InputError(str(exc)) from exc
    pem = paths.tls_crt.read_bytes()
    print(f"CA:           {paths.ca_crt}")
    print(f"serving cert: {paths.tls_crt} (key {paths.tls_key})")
    print(f"DNS names:    {', '.join(cert_dns_names(pem))}")
    print(f"valid until:  {cert_not_after(pem).isoformat()}")
    if args.apiserver_client:
        from webhook.cluster.certs import write_apiserver_client

        hosts = args.webhook_host or [f"{args.service}.{args.namespace}.svc"]
        try:
            client = write_apiserver_client(Path(args.out), hosts, args.kubeconfig_path,
                                            args.key_type, args.days)
        except (OSError, ValueError) as exc:
            raise InputError(str(exc)) from exc
        print(f"client CA:    {client.client_ca} (serve --client-ca {client.client_ca})")
        print(f"kube-apiserver client cert: {client.client_cert} (key {client.client_key})")
        print(f"kubeconfig:   {client.kubeconfig} (users: {', '.join(hosts)}); copy it to "
              f"{args.kubeconfig_path} on every control-plane host")
        print(f"admission configuration: {client.admission_configuration} (kube-apiserver "
              "--admission-control-config-file)")
    return EXIT_OK
