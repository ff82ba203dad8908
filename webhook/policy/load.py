"""Read a policy folder from disk: the only I/O of policy loading."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from webhook.policy.compile import PolicyDocument, PolicyError, compile_policies, revision_of
from webhook.policy.locate import duplicate_keys
from webhook.policy.model import PolicySet

POLICY_SUFFIXES = (".yaml", ".yml")
# libyaml's C parser when PyYAML has it: ~20x the pure-Python one (a thousand files load in
# well under a second instead of several).


class _SafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as the policies mean it: a date-like scalar stays its text, for the schema and the
    compiler to judge (`expires: 2030-13-01` unquoted would otherwise raise inside PyYAML)."""


_SafeLoader.add_constructor("tag:yaml.org,2002:timestamp",
                            lambda loader, node: loader.construct_scalar(node))


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
        error = PolicyError(str(folder), -1, "", "is not a folder of policy files",
                            unreadable=True)
        return LoadResult(None, (error,), "")
    files, unreadable = read_files(folder)
    documents, errors = parse_documents(files)
    errors.extend(unreadable)
    if not documents and not errors:
        # An empty mount must not silently switch enforcement off: keep the last good set.
        errors.append(PolicyError(str(folder), -1, "", "holds no policy documents (*.yaml)",
                                  unreadable=True))
    revision = revision_of(files)
    policy_set, compile_errors = compile_policies(documents, revision)
    errors.extend(compile_errors)
    errors.sort(key=lambda e: (e.file, e.index, e.line, e.column, e.path, e.reason))
    return LoadResult(None if errors else policy_set, tuple(errors), revision)


def read_files(folder: Path) -> tuple[list[tuple[str, bytes]], list[PolicyError]]:
    """(name, bytes) of every policy file, and an error for each one that cannot be read."""
    try:
        paths = policy_files(folder)
    except OSError as exc:
        return [], [PolicyError(str(folder), -1, "", f"cannot be read: {exc.strerror or exc}",
                                unreadable=True)]
    files, errors = [], []
    for path in paths:
        try:
            files.append((path.name, path.read_bytes()))
        except OSError as exc:
            errors.append(PolicyError(path.name, -1, "", f"cannot be read: "
                                      f"{exc.strerror or exc}", unreadable=True))
    return files, errors


def parse_documents(
    files: list[tuple[str, bytes]],
) -> tuple[list[PolicyDocument], list[PolicyError]]:
    """Every document of every file, each with its node tree: libyaml composes the nodes (with
    their line and column) anyway, so keeping them costs no parsing, only their memory until
    the set is compiled."""
    documents: list[PolicyDocument] = []
    errors: list[PolicyError] = []
    for name, data in files:
        index = 0
        loader = _SafeLoader(data)
        try:
            while loader.check_node():
                node = loader.get_node()
                # Before construction, which flattens `<<` merges into the maps in place.
                duplicates = tuple(duplicate_keys(node)) if node is not None else ()
                body = loader.construct_document(node)
                if body is not None:  # an empty document between `---` lines
                    documents.append(PolicyDocument(name, index, body, node, duplicates))
                index += 1
        except yaml.YAMLError as exc:
            errors.append(yaml_error(name, index, exc))
        except RecursionError:
            errors.append(PolicyError(name, index, "", "is nested too deeply to be a policy",
                                      unreadable=True))
        finally:
            loader.dispose()
    return documents, errors


def yaml_error(file: str, index: int, exc: yaml.YAMLError) -> PolicyError:
    """`FILE:LINE:COL: message` on one line, at the mark of the problem."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and mark is not None and (
            context_mark.line, context_mark.column) != (mark.line, mark.column):
        problem = (f"{problem} ({context} at line {context_mark.line + 1}, "
                   f"column {context_mark.column + 1})")
    elif context:
        problem = f"{problem} ({context})"
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    return PolicyError(file, index, "", f"YAML syntax error: {' '.join(problem.split())}",
                       line, column, unreadable=True)
