"""`audit [FILE...]`: existing pods (files, or the live cluster) judged as if created now.

webhook.audit (the kubernetes client, the [cluster] extra) is imported inside `cmd_audit`:
`main` names the extra when it is absent, and no other command loads it. An optional
dependency boundary, not a cycle dodge.
"""

from __future__ import annotations

import argparse
import sys

from webhook.cli.common import DEFAULT_POLICIES, InputError
from webhook.cli.inputs import load_policies


def add_parser(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser(
        "audit", help="judge existing pods (files or the live cluster) as if created now; "
                      "exit 1 if any would be denied")
    audit.add_argument("files", nargs="*", metavar="FILE",
                       help="Pod or List files, YAML or JSON ('-' for stdin); "
                            "none: the cluster of the kubeconfig, or in-cluster")
    audit.add_argument("--policies", default=DEFAULT_POLICIES)
    audit.add_argument("--username", help="who wrote the pods (not recorded on a pod): one of "
                       "Airflow's accounts has every pod judged, whatever its labels")
    audit.add_argument("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, in-cluster")
    audit.add_argument("--context", help="kubeconfig context")
    audit.add_argument("-n", "--namespace", help="only this namespace (with FILE: the "
                       "namespace of pods that do not say)")
    audit.add_argument("-A", "--all-namespaces", action="store_true")
    audit.add_argument("-l", "--selector", help="label selector, e.g. kubernetes_executor=True")
    audit.add_argument("-o", "--output", choices=("table", "json", "policyreport"),
                       default="table")
    audit.add_argument("--chunk-size", type=int, default=500,
                       help="pods per list request, as kubectl's --chunk-size")
    audit.add_argument("--write-reports", action="store_true",
                       help="create or update one PolicyReport per namespace in the cluster")
    audit.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    from webhook.audit.command import AuditOptions, run
    from webhook.audit.files import SourceError

    policies = load_policies(args.policies)
    options = AuditOptions(
        files=tuple(args.files), output=args.output, kubeconfig=args.kubeconfig,
        context=args.context, namespace=args.namespace, all_namespaces=args.all_namespaces,
        selector=args.selector, write_reports=args.write_reports, page_size=args.chunk_size,
        username=args.username)
    try:
        return run(policies, options, sys.stdout, sys.stderr)
    except SourceError as exc:
        raise InputError(str(exc)) from exc
