"""`mutate FILE`: the pod as the mutating hook leaves it (or `--patch`, its JSON patch).

The verdict is webhook.decide's, imported inside `cmd_mutate` with the rest of the core: the
core reads quantities with the kubernetes client (the [cluster] extra), and `main` names that
extra instead of printing a traceback only once a command runs. An optional dependency
boundary, not a cycle dodge.
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from webhook.admission import NESTED_TOO_DEEPLY
from webhook.cli.common import DEFAULT_POLICIES, EXIT_DENIED, EXIT_OK, InputError
from webhook.cli.inputs import load_policies, malformed_pod, read_pod


def add_parser(sub: argparse._SubParsersAction) -> None:
    mutate = sub.add_parser("mutate", help="print the pod as the mutating hook leaves it")
    mutate.add_argument("file", help="a Pod or AdmissionReview, YAML or JSON ('-' for stdin)")
    mutate.add_argument("--policies", default=DEFAULT_POLICIES)
    mutate.add_argument("--patch", action="store_true", help="print the JSON patch instead")
    mutate.add_argument("--namespace", default="", help="when the pod does not say")
    mutate.add_argument("--username", help="who creates the pod (identity checks)")
    mutate.set_defaults(func=cmd_mutate)


def cmd_mutate(args: argparse.Namespace) -> int:
    from webhook.decide import MUTATE, SKIP, PodRequest, decide

    policies = load_policies(args.policies)
    pod, namespace, username = read_pod(args.file)
    try:
        decision = decide(PodRequest(pod, namespace or args.namespace, username or args.username),
                          policies, MUTATE)
    except RecursionError as exc:
        raise InputError(f"{args.file}: {NESTED_TOO_DEEPLY}") from exc
    if decision.verdict == SKIP:
        from webhook.validation.validate import NOT_AIRFLOW  # the core: see the docstring

        print(f"skipped: {NOT_AIRFLOW}", file=sys.stderr)
    elif problem := malformed_pod(pod):
        raise InputError(f"{args.file}: malformed pod: {problem}")
    for warning in decision.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if decision.refusals:
        # Refused is refused, whatever the reason (the server answers 400 or 403).
        for refusal in decision.refusals:
            print(f"refused: {refusal.message}", file=sys.stderr)
        return EXIT_DENIED
    if args.patch:
        print(json.dumps(decision.patch, indent=2))
    else:
        sys.stdout.write(yaml.safe_dump(decision.pod, sort_keys=False))
    return EXIT_OK
