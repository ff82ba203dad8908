"""Field paths as admins write them: `spec.containers[base].securityContext`.

A bracket selects a list item by its merge key (`[base]`, `[*]` for every item). Used for
locked fields and the override allowlist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from webhook.pod.lists import MERGE_KEYS

_TOKEN = re.compile(r"\.?([A-Za-z0-9_/.-]+?)(?=\.|\[|$)|\[([^\]]+)\]")


@dataclass(frozen=True)
class Item:
    """A list item selected by its merge key value; `*` selects every item."""

    key: str


Segment = str | Item


def parse_path(path: str) -> tuple[Segment, ...]:
    """Split a path; raises ValueError naming what is wrong."""
    segments: list[Segment] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse field path {path!r} at offset {pos}")
        segments.append(Item(m.group(2)) if m.group(2) is not None else m.group(1))
        pos = m.end()
    if not segments or isinstance(segments[0], Item):
        raise ValueError(f"field path {path!r} must start with a field name")
    return tuple(segments)


def format_path(segments: tuple[Segment, ...]) -> str:
    out = ""
    for seg in segments:
        out += f"[{seg.key}]" if isinstance(seg, Item) else (f".{seg}" if out else seg)
    return out


def covers(prefix: tuple[Segment, ...], path: tuple[Segment, ...]) -> bool:
    """Whether `path` lies under `prefix` (`[*]` in the prefix matches any item or key)."""
    if len(path) < len(prefix):
        return False
    for want, have in zip(prefix, path, strict=False):
        if isinstance(want, Item) and want.key == "*":
            continue
        if _text(want) != _text(have):
            return False
    return True


def _text(seg: Segment) -> str:
    return seg.key if isinstance(seg, Item) else seg


def leaf_paths(fragment: Any) -> list[tuple[tuple[Segment, ...], Any]]:
    """Every leaf a fragment sets, e.g. (spec, containers, [base], resources, limits, cpu).

    Named list items are addressed by their merge key and map keys holding dots (label keys)
    by brackets, the way allowlists, locks and error messages name them.
    """
    out: list[tuple[tuple[Segment, ...], Any]] = []
    _leaves(fragment, (), None, out)
    return out


def _leaves(value: Any, path: tuple, field: str | None, out: list) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            seg = Item(key) if ("." in str(key) or "/" in str(key)) else str(key)
            _leaves(sub, (*path, seg), str(key), out)
        return
    key_fields = MERGE_KEYS.get(field or "")
    if (isinstance(value, list) and value and key_fields
            and all(isinstance(i, dict) and i.get(key_fields[0]) is not None for i in value)):
        for item in value:
            label = ",".join(str(item.get(f)) for f in key_fields if item.get(f) is not None)
            rest = {k: v for k, v in item.items() if k not in key_fields}
            if rest:
                _leaves(rest, (*path, Item(label)), None, out)
            else:
                out.append(((*path, Item(label)), item))
        return
    out.append((path, value))


def _key_field(list_field: str) -> str:
    return MERGE_KEYS.get(list_field, ("name",))[0]


def get_values(doc: Any, segments: tuple[Segment, ...], *, wildcard: bool = True
               ) -> list[tuple[tuple, Any]]:
    """Every (concrete path, value) a path selects in `doc`; missing fields are skipped.

    With `wildcard=False`, `[*]` selects only an item literally named `*` (a template's entry
    for every container), not every item.
    """
    found: list[tuple[tuple, Any]] = []
    _walk(doc, segments, (), None, found, wildcard)
    return found


def _walk(node: Any, rest: tuple[Segment, ...], done: tuple, field: str | None,
          found: list[tuple[tuple, Any]], wildcard: bool) -> None:
    if not rest:
        found.append((done, node))
        return
    head, tail = rest[0], rest[1:]
    if isinstance(head, Item) and isinstance(node, dict):
        if head.key in node:
            _walk(node[head.key], tail, (*done, head), head.key, found, wildcard)
        return
    if isinstance(head, Item):
        if not isinstance(node, list):
            return
        key = _key_field(field or "")
        for item in node:
            if isinstance(item, dict) and (
                    (wildcard and head.key == "*") or item.get(key) == head.key):
                _walk(item, tail, (*done, Item(str(item.get(key)))), None, found, wildcard)
        return
    if isinstance(node, dict) and head in node:
        _walk(node[head], tail, (*done, head), head, found, wildcard)


def with_value(doc: Any, segments: tuple[Segment, ...], value: Any) -> Any:
    """Set (or with value None, remove) a field on a copy of `doc`, creating the maps above it
    down to a list item (items are never created), copying only the maps and lists on the
    way: unchanged subtrees stay shared, so the patch diff skips them by identity."""
    return _with_value(doc, segments, value, None, True)


def _with_value(node: Any, rest: tuple[Segment, ...], value: Any, field: str | None,
                creating: bool) -> Any:
    head = rest[0]
    last = len(rest) == 1
    if last:
        if not isinstance(node, dict):
            return node
        key = head.key if isinstance(head, Item) else head
        out = dict(node)
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
        return out
    if isinstance(head, Item):
        if isinstance(node, dict):
            if head.key not in node:
                return node
            return {**node, head.key: _with_value(node[head.key], rest[1:], value, head.key,
                                                  False)}
        if not isinstance(node, list):
            return node
        key = _key_field(field or "")
        return [_with_value(item, rest[1:], value, None, False)
                if isinstance(item, dict) and (head.key == "*" or item.get(key) == head.key)
                else item for item in node]
    if not isinstance(node, dict):
        return node
    if head in node:
        child = node[head]
    elif creating:
        child = {}  # missing maps above a list item are created
    else:
        return node
    return {**node, head: _with_value(child, rest[1:], value, head, creating)}
