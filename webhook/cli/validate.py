"""`validate FILE...`: each pod judged as the validating hook judges it (`--after-mutation`:
after the mutating hook; `--old`: an update; `--level`: one Pod Security level alone, as the
cluster's own admission would); exit 1 if any is denied.

The verdict is webhook.decide's, imported inside `cmd_validate` with the rest of the core: the
core reads quantities with the kubernetes client (the [cluster] extra), and `main` names that
extra instead of printing a traceback only once a command runs. An optional dependency
boundary, not a cycle dodge.
"""

from __future__ import annotations

import argparse
import sys

from webhook.admission import NESTED_TOO_DEEPLY
from webhook.cli.common import DEFAULT_POLICIES, EXIT_BAD_INPUT, EXIT_DENIED, EXIT_OK, InputError
from webhook.cli.inputs import load_policies, malformed_pod, read_pod


def add_parser(sub: argparse._SubParsersAction) -> None:
    validate = sub.add_parser("validate", help="print each violation; exit 1 if any is denied")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--policies", default=DEFAULT_POLICIES)
    validate.add_argument("--level", choices=("baseline", "restricted"),
                          help="only Pod Security at this level (compare with the cluster PSA)")
    validate.add_argument("--version", dest="level_version", default="latest",
                          help="with --level: the Pod Security version, latest or v1.N")
    validate.add_argument("--namespace", default="")
    validate.add_argument("--username", help="who writes the pod: one of Airflow's accounts "
                          "(Settings identity) has every pod judged, whatever its labels")
    validate.add_argument("--old", metavar="FILE",
                          help="judge an update: FILE is the pod before it, each FILE after it")
    validate.add_argument("--subresource", choices=("ephemeralcontainers", "resize"),
                          default="", help="with --old: the update is to this subresource")
    validate.add_argument("--after-mutation", action="store_true",
                          help="judge the pod as the validating hook sees it in a cluster: after "
                               "the mutating hook (without it, the pod is judged as written, "
                               "like a pod the mutating hook never saw)")
    validate.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from webhook.decide import BOTH, UPDATE, VALIDATE, PodRequest, decide

    policies = load_policies(args.policies)
    if args.subresource and not args.old:
        raise InputError("--subresource judges an update: give the pod before it with --old")
    if args.old is not None:
        if args.level is not None or args.after_mutation:
            raise InputError("--old judges an update as the webhook does: no --level or "
                             "--after-mutation (a live pod is never mutated again)")
        old, old_namespace, _ = read_pod(args.old)
    worst = EXIT_OK
    for file in args.files:
        try:
            pod, namespace, username = read_pod(file)
        except InputError as exc:
            print(f"{file}: error: {exc}", file=sys.stderr)
            worst = EXIT_BAD_INPUT
            continue
        request = PodRequest(pod, namespace or args.namespace, username or args.username)
        stages = BOTH if args.after_mutation else VALIDATE
        if args.old is not None:
            # A later write to a live pod: judged as the validating hook judges it.
            request = PodRequest(pod, namespace or old_namespace or args.namespace,
                                 username or args.username, operation=UPDATE, old_pod=old,
                                 subresource=args.subresource)
            stages = VALIDATE
        try:
            if args.level is not None:
                # One Pod Security level on any pod, as the cluster's own PSA would judge it.
                decision = decide(request, policies, VALIDATE, level=args.level,
                                  level_version=args.level_version)
            else:
                decision = decide(request, policies, stages)
            if decision.caps:
                print(f"{file}: denied\n  {decision.message}")
                worst = max(worst, EXIT_DENIED)
                continue
            if decision.refusals:
                print(f"{file}: denied (mutating hook)")
                for refusal in decision.refusals:
                    print(f"  {refusal.message}")
                worst = max(worst, EXIT_DENIED)
                continue
            assert decision.validation is not None
            result, pod, warnings = decision.validation, decision.pod, decision.warnings
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        except RecursionError:
            print(f"{file}: error: {NESTED_TOO_DEEPLY}", file=sys.stderr)
            worst = EXIT_BAD_INPUT
            continue
        if result.skipped:
            # Nothing judged it: say so, rather than "allowed".
            print(f"{file}: skipped: {result.skipped}")
            continue
        problem = malformed_pod(pod)
        if problem:
            # kube-apiserver would never decode it: an error, not a pod that passed.
            print(f"{file}: error: malformed pod: {problem}", file=sys.stderr)
            worst = EXIT_BAD_INPUT
            continue
        print(f"{file}: {'allowed' if result.allowed else 'denied'}")
        if not result.allowed:
            print(f"  {result.message}")
            worst = max(worst, EXIT_DENIED)
        for warning in warnings:
            print(f"  warning: {warning}")
        for key, value in sorted(result.audit_annotations.items()):
            print(f"  audit {key}: {value}")
    return worst
