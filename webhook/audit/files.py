"""Pods from files: a Pod, a List or PodList (`kubectl get pods -o yaml`), JSON or multi-document
YAML. Objects of other kinds are passed over with a note, so `kubectl get all -o yaml` works."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LIST_KINDS = ("List", "PodList")


class SourceError(Exception):
    """A source cannot be read: one line, exit 2."""


def pods_from_files(paths: list[str], notes: TextIO | None = None) -> Iterator[dict]:
    for path in paths:
        yield from pods_from_text(_read(path), path, notes)


def _read(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc


def pods_from_text(text: str, name: str, notes: TextIO | None = None) -> Iterator[dict]:
    try:
        # JSON first: `kubectl get pods -o json` of a big cluster parses ~10x faster than YAML.
        documents = [orjson.loads(text)] if text.lstrip().startswith("{") else None
    except orjson.JSONDecodeError:
        documents = None
    try:
        if documents is None:
            documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SourceError(f"{name} is neither JSON nor YAML{where}: {problem}") from exc
    for index, doc in enumerate(documents):
        if doc is None:
            continue
        where = name if len(documents) == 1 else f"{name} (document {index + 1})"
        yield from _pods(doc, where, notes)


def _pods(doc: Any, where: str, notes: TextIO | None) -> Iterator[dict]:
    if not isinstance(doc, dict):
        raise SourceError(f"{where}: expected a Pod or a List of pods, got a "
                          f"{type(doc).__name__}")
    kind = doc.get("kind")
    if kind in LIST_KINDS:
        items = doc.get("items")
        if not isinstance(items, list):
            raise SourceError(f"{where}: {kind} without an items list")
        for i, item in enumerate(items):
            yield from _pods(item, f"{where} items[{i}]", notes)
    elif kind == "Pod":
        if not isinstance(doc.get("metadata"), dict) or not isinstance(doc.get("spec"), dict):
            raise SourceError(f"{where}: a Pod needs metadata and spec maps")
        yield doc
    elif kind is None:
        raise SourceError(f"{where}: no kind: expected a Pod or a List of pods")
    elif notes is not None:
        print(f"note: {where}: {kind} is not a Pod, passed over", file=notes)
