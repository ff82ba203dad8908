"""Read a policy folder from disk: the only I/O of policy loading."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from webhook.policy.compile import PolicyDocument, PolicyError, compile_policies, revision_of
from webhook.policy.model import PolicySet

POLICY_SUFFIXES = (".yaml", ".yml")
# libyaml's C parser when PyYAML has it: ~20x the pure-Python one (a thousand files load in
# well under a second instead of several).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class LoadResult:
    policy_set: PolicySet | None
    errors: tuple[PolicyError, ...]
    revision: str


def policy_files(folder: Path) -> list[Path]:
    """Top-level *.yaml files; hidden entries are skipped (a ConfigMap mount's `..data`)."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix in POLICY_SUFFIXES and not p.name.startswith(".") and p.is_file())


def load_policy_dir(folder: Path | str) -> LoadResult:
    folder = Path(folder)
    if not folder.is_dir():
        error = PolicyError(str(folder), -1, "", "is not a folder of policy files")
        return LoadResult(None, (error,), "")
    files = [(p.name, p.read_bytes()) for p in policy_files(folder)]
    documents, errors = parse_documents(files)
    if not documents and not errors:
        # An empty mount must not silently switch enforcement off: keep the last good set.
        errors.append(PolicyError(str(folder), -1, "", "holds no policy documents (*.yaml)"))
    revision = revision_of(files)
    policy_set, compile_errors = compile_policies(documents, revision)
    errors.extend(compile_errors)
    return LoadResult(None if errors else policy_set, tuple(sorted(errors)), revision)


def parse_documents(
    files: list[tuple[str, bytes]],
) -> tuple[list[PolicyDocument], list[PolicyError]]:
    documents: list[PolicyDocument] = []
    errors: list[PolicyError] = []
    for name, data in files:
        index = 0
        try:
            for index, body in enumerate(yaml.load_all(data, Loader=_SafeLoader)):
                if body is not None:  # an empty document between `---` lines
                    documents.append(PolicyDocument(name, index, body))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            # The error belongs to the document after the last one that parsed.
            failed = index + 1 if any(d.file == name for d in documents) else 0
            errors.append(PolicyError(name, failed, "", f"YAML error at {where}{problem}"))
    return documents, errors
