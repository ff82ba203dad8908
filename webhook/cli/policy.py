"""`policy lint DIR` and `policy test DIR`: check a policy folder, and run the test cases
kept in DIR/tests.

The core (policy loading, webhook.policy_tests) is imported inside the commands: it reads
quantities with the kubernetes client (the [cluster] extra), and `main` names that extra
instead of printing a traceback only once a command runs. An optional dependency boundary,
not a cycle dodge.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from webhook.cli.common import EXIT_BAD_INPUT, EXIT_DENIED, EXIT_OK, InputError
from webhook.cli.inputs import as_given, lint_code, load_policies


def add_parser(sub: argparse._SubParsersAction) -> None:
    policy = sub.add_parser("policy", help="check a policy folder")
    policy_sub = policy.add_subparsers(metavar="ACTION")
    lint = policy_sub.add_parser("lint", help="load every file; print precise errors")
    lint.add_argument("dir")
    lint.set_defaults(func=cmd_policy_lint)
    test = policy_sub.add_parser("test", help="run the test cases kept in DIR/tests")
    test.add_argument("dir")
    test.set_defaults(func=cmd_policy_test)


def cmd_policy_lint(args: argparse.Namespace) -> int:
    from webhook.policy.load import load_policy_dir

    result = load_policy_dir(args.dir)
    for error in result.errors:
        print(as_given(args.dir, error))
    if result.errors:
        print(f"{len(result.errors)} error(s); the webhook would keep its last good policy set")
        return lint_code(result.errors)
    assert result.policy_set is not None
    print(f"ok: {result.policy_set.document_count} documents, revision {result.revision}")
    return EXIT_OK


def cmd_policy_test(args: argparse.Namespace) -> int:
    from webhook.policy_tests import run_policy_tests

    # The policies are what is under test here: lint errors in them fail the run (1).
    policies = load_policies(args.dir, lint_errors_code=EXIT_DENIED)
    tests = Path(args.dir) / "tests"
    if not tests.is_dir():
        raise InputError(f"{tests} is not a folder of test cases")
    results = run_policy_tests(tests, policies)
    if not results:
        raise InputError(f"{tests} holds no test cases (*.yaml)")
    failed = [r for r in results if not r.passed]
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'} {result.file}: {result.name}")
        for mismatch in result.mismatches:
            print(f"    {mismatch}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if any(r.unreadable for r in results):
        return EXIT_BAD_INPUT
    return EXIT_DENIED if failed else EXIT_OK
