"""The `airflow-pod-webhook` entry point: the parser every command adds itself to, and `main`,
which keeps the exit-code contract (webhook.cli.common) for all of them: `error: ...` and exit
2 for input we cannot use, the `pip install` hint for a missing extra instead of a traceback,
and a closed standard output (`... | head -1`) that never changes the code.

Each command lives in its own module (`add_parser` and its `cmd_*` function); a new command is
a new module added to COMMANDS.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import Any

# Each command module by its full name: the package (webhook.cli) re-exports `main` from here.
import webhook.cli.audit as audit
import webhook.cli.certs as certs
import webhook.cli.manifests as manifests
import webhook.cli.mutate as mutate
import webhook.cli.policy as policy
import webhook.cli.serve as serve
import webhook.cli.validate as validate
from webhook.cli.common import EXIT_BAD_INPUT, InputError

# In the order `--help` lists them.
COMMANDS = (serve, certs, manifests, mutate, validate, audit, policy)


# Packages only the server extra installs, by the top-level module name an ImportError names.
# The base install (what DAG code in an Airflow image gets) has PyYAML and jsonschema only.
SERVER_ONLY_MODULES = frozenset(
    {"flask", "werkzeug", "gunicorn", "prometheus_client", "orjson", "cryptography"})
CLUSTER_MODULES = frozenset({"kubernetes"})


class ClosedPipeGuard(io.TextIOBase):
    """Standard output that survives its reader going away (`validate ... | head -1`).

    The command keeps running to its real exit code: a denial found after the reader left
    still exits 1. Once the pipe is closed, the rest of the output goes to /dev/null (also what
    Python flushes at exit, which would otherwise fail and exit 120).
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def writable(self) -> bool:
        return True

    def _reader_gone(self) -> None:
        self.closed_pipe = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass  # not a real file descriptor (tests): nothing will flush it at exit


def missing_extra_hint(exc: ImportError, command: str) -> str | None:
    """The one-line fix when `exc` is a server/cluster dependency absent from a base install."""
    module = (exc.name or "").partition(".")[0]
    if module in SERVER_ONLY_MODULES:
        return (f"`{command}` needs {module}, which only the server extra installs: "
                "pip install 'airflow-pod-webhook[server]'")
    if module in CLUSTER_MODULES:
        return (f"`{command}` needs the kubernetes client: "
                "pip install 'airflow-pod-webhook[cluster]' (or [server], which includes it)")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: a bad flag is 2, --help is 0
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    stdout, guard = sys.stdout, ClosedPipeGuard(sys.stdout)
    sys.stdout = guard
    try:
        code = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.code
    except ImportError as exc:
        hint = missing_extra_hint(exc, args.func.__name__.removeprefix("cmd_").replace("_", " "))
        if hint is None:
            raise
        print(f"error: {hint}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    finally:
        guard.flush()
        sys.stdout = stdout
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-pod-webhook",
        description="Admission webhook for Apache Airflow worker pods.")
    sub = parser.add_subparsers(metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser
