"""Where in a YAML file a field path points: line and column for every policy error.

The loader keeps each document's node tree (libyaml composes it anyway, with marks); an
error's path (`spec.template.spec.containers[base].resources`) is walked down that tree.
Map keys may hold dots (`nvidia.com/gpu`), so a path step matches the longest key that
fits; a list step `[x]` is an index or the value of the item's merge key (`name`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


@dataclass(frozen=True)
class Location:
    line: int  # 1-based
    column: int  # 1-based
    key: Node | None  # the key node, when the path ends at a map entry
    node: Node  # the value node (or the deepest ancestor found)
    exact: bool  # False: the path went further than the document does


def locate(root: Node, path: str) -> Location:
    """The node a path names, or its deepest ancestor in the document."""
    node, key, rest = root, None, "" if path == "<document>" else path
    while rest:
        step = _step(node, rest)
        if step is None:
            return _location(key or node, key, node, exact=False)
        key, node, consumed = step
        rest = rest[consumed:]
        if rest.startswith("."):
            rest = rest[1:]
    return _location(node, key, node, exact=True)


def _location(at: Node, key: Node | None, node: Node, exact: bool) -> Location:
    mark = at.start_mark
    return Location(mark.line + 1, mark.column + 1, key, node, exact)


def _step(node: Node, rest: str) -> tuple[Node | None, Node, int] | None:
    """(key node or None, child node, characters of `rest` consumed)."""
    if isinstance(node, MappingNode):
        best: tuple[Node | None, Node, int] | None = None
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = str(key_node.value)
            for form in (key, f"[{key}]"):
                fits = rest == form or (rest.startswith(form) and rest[len(form)] in ".[")
                if fits and (best is None or len(form) > best[2]):
                    best = (key_node, value_node, len(form))
        return best
    if isinstance(node, SequenceNode) and rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return None
        wanted = rest[1:end]
        if wanted.isdigit() and int(wanted) < len(node.value):
            return None, node.value[int(wanted)], end + 1
        for item in node.value:
            if isinstance(item, MappingNode) and any(
                    isinstance(v, ScalarNode) and v.value == wanted for _, v in item.value):
                return None, item, end + 1
    return None


def scalar_text(node: Node | None) -> Any:
    """A scalar node's text as written, or None for maps and lists."""
    return node.value if isinstance(node, ScalarNode) else None


def duplicate_keys(root: Node) -> list[tuple[str, Node]]:
    """(path, key node) of every map key written twice: YAML keeps the last silently, so the
    first (a whole `lockedFields:` list, say) would be dropped without a word. Run it on the
    composed tree, before construction flattens `<<` merges into the maps."""
    found: list[tuple[str, Node]] = []
    stack: list[tuple[Node, str]] = [(root, "")]
    visited: set[int] = set()  # an alias repeats a node (or nests it in itself): walk it once
    while stack:
        node, path = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, ScalarNode) else None
                sub = f"{path}.{key}" if path else str(key)
                if key is not None and key != "<<" and key in seen:
                    found.append((sub, key_node))
                seen.add(key)
                stack.append((value_node, sub))
        elif isinstance(node, SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
    return found
