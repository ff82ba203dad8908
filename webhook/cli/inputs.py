"""What the commands read: pod files (a Pod or an AdmissionReview, YAML or JSON) within the
server's own limits and with its messages, and the policy folder.

The webhook core is imported inside the functions that need it: it reads quantities with the
kubernetes client, which only the [cluster] and [server] extras install, and `main` turns that
ImportError into the one-line `pip install` hint only once a command runs (an optional
dependency boundary, not a cycle dodge).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from webhook.admission import (
    MAX_BODY_BYTES,
    NESTED_TOO_DEEPLY,
    BadReview,
    BodyError,
    body_too_large,
    decode_body,
    parse_review,
)
from webhook.cli.common import EXIT_BAD_INPUT, EXIT_DENIED, InputError
from webhook.kube.pod_fields import fragment_problems


def lint_code(errors: Any) -> int:
    """2 when a file could not be read as YAML at all (or the folder is missing), else 1."""
    return EXIT_BAD_INPUT if any(e.unreadable for e in errors) else EXIT_DENIED


def load_policies(folder: str, lint_errors_code: int = EXIT_BAD_INPUT) -> Any:
    """The policy set, or InputError: exit 2 for an unreadable folder; for lint errors,
    `lint_errors_code` (the policies are input to mutate and validate, the subject of policy
    test)."""
    from webhook.policy.load import load_policy_dir

    result = load_policy_dir(folder)
    if result.policy_set is None:
        code = lint_code(result.errors)
        raise InputError(f"policy folder {folder} does not load:\n  "
                         + "\n  ".join(str(as_given(folder, e)) for e in result.errors),
                         EXIT_BAD_INPUT if code == EXIT_BAD_INPUT else lint_errors_code)
    return result.policy_set


def as_given(folder: str, error: Any) -> Any:
    """The error with its file named as the user gave the folder (`policies/10-x.yaml`), so
    editors and CI annotations can open it."""
    if error.index < 0 and error.file == str(Path(folder)):
        return error  # the folder itself
    return replace(error, file=os.path.join(folder, error.file))


def malformed_pod(pod: dict) -> str | None:
    """Where a pod is not shaped like a Pod (wrong types; fields this client does not know are
    a newer cluster's, not errors), if anywhere."""
    from webhook.mutation.mutate import malformed_shape

    problem = malformed_shape(pod)
    if problem:
        return problem
    found = fragment_problems(pod, unknown_fields=False)
    return f"{found[0].path}: {found[0].reason}" if found else None


def read_pod(file: str) -> tuple[dict, str, str | None]:
    """(pod, namespace, username) from a Pod or an AdmissionReview, YAML or JSON, within the
    server's limits: the same size cap, JSON read the same way, YAML without aliases."""
    try:
        if file == "-":
            data = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
        else:
            with open(file, "rb") as handle:
                data = handle.read(MAX_BODY_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc}") from exc
    if len(data) > MAX_BODY_BYTES:
        raise InputError(f"{file}: {body_too_large().message}")
    doc = _decode(file, data)
    if not isinstance(doc, dict):
        raise InputError(f"{file} must hold a Pod or an AdmissionReview")
    return _pod_of(file, doc)


def _decode(file: str, data: bytes) -> Any:
    """JSON exactly as the server reads it; anything else as YAML without anchors or aliases
    (as annotations are read: a few bytes of aliases can expand to gigabytes)."""
    from webhook.mutation.overrides import load_yaml_without_aliases

    try:
        return decode_body(data)
    except BodyError as exc:
        if "depth limit exceeded" in exc.message:  # JSON too deep for the server
            raise InputError(f"{file}: {exc.message}") from exc
    try:
        return load_yaml_without_aliases(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{file} is not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{where}: neither JSON nor YAML: {problem}") from exc
    except RecursionError as exc:
        raise InputError(f"{file}: {NESTED_TOO_DEEPLY}") from exc


def _pod_of(file: str, doc: dict) -> tuple[dict, str, str | None]:
    if doc.get("kind") == "AdmissionReview":
        try:
            request = parse_review(doc)
        except BadReview as exc:
            raise InputError(f"{file}: bad AdmissionReview: {exc}") from exc
        if not isinstance(request.object, dict):
            raise InputError(f"{file}: request.object must be a Pod")
        return request.object, request.namespace, request.username
    if doc.get("kind") not in (None, "Pod"):
        raise InputError(f"{file}: kind must be Pod or AdmissionReview, got {doc.get('kind')}")
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    return doc, namespace, None
