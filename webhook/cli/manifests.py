"""`manifests`: print the webhook configurations with caBundle filled (`--all`: with the
kustomize deploy/ tree, everything to apply).

The policy folder (whose core reads quantities with the kubernetes client, the [cluster]
extra) and the registration rendering are imported inside `cmd_manifests`: `main` names a
missing extra, and building the parser loads no command's dependencies. An optional
dependency boundary, not a cycle dodge.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from webhook.cli.common import (
    DEFAULT_NAMESPACE,
    DEFAULT_POLICIES,
    DEFAULT_SERVICE,
    EXIT_OK,
    InputError,
)
from webhook.cli.inputs import load_policies


def add_parser(sub: argparse._SubParsersAction) -> None:
    manifests = sub.add_parser("manifests",
                               help="print the webhook configurations with caBundle filled")
    # No ./certs default: that is where `make serve` writes its development CA, and a caBundle
    # from it would quietly make a cluster trust a dev key.
    manifests.add_argument("--cert-dir", default=os.environ.get("AIRFLOW_POD_WEBHOOK_CERT_DIR"),
                           help="folder with ca.crt, the CA of the serving cert (required)")
    manifests.add_argument("--service", default=DEFAULT_SERVICE)
    manifests.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    manifests.add_argument("--url", help="call the webhook at this https URL instead")
    manifests.add_argument("--single-call", action="store_true",
                           help="one mutating hook that also validates (/mutate-validate, "
                                "failurePolicy Fail); see README for the trade-off")
    manifests.add_argument("--all", action="store_true",
                           help="print `kubectl kustomize deploy/` and the webhook "
                                "configurations: everything to apply")
    manifests.add_argument("--image", metavar="REF",
                           help="with --all: the webhook image, e.g. registry.io/team/"
                                "airflow-pod-webhook:0.1.0 (required unless deploy/ sets one)")
    manifests.add_argument("--self-patch-ca-bundle", action="store_true",
                           help="with --all: add the opt-in component that lets the webhook "
                                "patch its own caBundle (RBAC, API token, egress to the API "
                                "server); see deploy/README.md")
    manifests.add_argument("--deploy-dir", default="deploy")
    manifests.add_argument("--policies", default=DEFAULT_POLICIES,
                           help="policy folder whose Settings name Airflow's accounts (identity): "
                                "every pod they write is sent to the webhook")
    manifests.set_defaults(func=cmd_manifests)


SELF_PATCH_OVERLAY = "overlays/self-patch-ca-bundle"


def cmd_manifests(args: argparse.Namespace) -> int:
    from webhook.cluster.registration import (
        PLACEHOLDER_REGISTRY,
        dump_yaml,
        render_manifests,
        webhook_configurations,
        webhook_containers,
    )

    if (args.image or args.self_patch_ca_bundle) and not args.all:
        raise InputError("--image and --self-patch-ca-bundle only apply to --all")
    if args.cert_dir is None:
        hint = (" (certs/ holds the development CA of `make serve`: pass --cert-dir certs only "
                "for a test cluster)" if Path("certs", "ca.crt").is_file() else "")
        raise InputError(
            "no --cert-dir: manifests fills caBundle with DIR/ca.crt, the CA that signed the "
            "webhook's serving cert. Create one with `airflow-pod-webhook certs --service "
            "airflow-pod-webhook --namespace airflow-pod-webhook --out DIR`, then pass "
            "--cert-dir DIR; with cert-manager use `kubectl apply -k deploy/overlays/"
            f"cert-manager` instead (deploy/README.md){hint}")
    ca_path = Path(args.cert_dir) / "ca.crt"
    if not ca_path.is_file():
        raise InputError(f"{ca_path} not found: run `airflow-pod-webhook certs --out "
                         f"{args.cert_dir}` first")
    ca = ca_path.read_bytes()
    usernames = load_policies(args.policies).settings.airflow_usernames
    if args.all:
        folder = Path(args.deploy_dir)
        if args.self_patch_ca_bundle:
            folder = folder / SELF_PATCH_OVERLAY
        try:
            objects = render_manifests(folder, ca, image=args.image,
                                       airflow_usernames=usernames)
        except FileNotFoundError as exc:
            raise InputError(str(exc)) from exc
        except subprocess.CalledProcessError as exc:
            if "out of bounds for value airflow-pod-webhook" in exc.stderr:
                raise InputError(
                    f"{folder} names no webhook image (deploy/base sets none by default): pass "
                    "--image REF with the image you pushed, or set it in deploy/base with "
                    "`kustomize edit set image airflow-pod-webhook=REF`") from exc
            raise InputError(f"kubectl kustomize {folder} failed: {exc.stderr.strip()}") from exc
        except ValueError as exc:
            raise InputError(f"--image: {exc}") from exc
        unset = [c["image"] for c in webhook_containers(objects)
                 if c["image"].startswith(PLACEHOLDER_REGISTRY)]
        if unset:
            raise InputError(
                f"the webhook image is the placeholder {unset[0]}, which no node can pull (the "
                "fail-closed validating hook would then block every Airflow pod): pass --image "
                "REF with the image you pushed, or set it in deploy/base with `kustomize edit "
                "set image airflow-pod-webhook=REF`")
    else:
        objects = webhook_configurations(ca, args.service, args.namespace, url=args.url,
                                         single_call=args.single_call,
                                         airflow_usernames=usernames)
    sys.stdout.write(dump_yaml(objects))
    return EXIT_OK
