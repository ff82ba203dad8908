"""Typed, never-raising reads of a pod dict, mirroring how Go decodes into corev1 types.

A value of the wrong JSON type is read as if it were absent: that is what a nil pointer or a
zero value would be in the Go structs upstream checks read. Nothing here raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from webhook.pod.lists import CONTAINER_LISTS

# Go visits these in this order (policy/visitor.go); ephemeral containers count too.


def struct(parent: Any, key: str) -> dict[str, Any] | None:
    """A pointer-to-struct field: a dict when set, None when nil (missing, null or garbage)."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def items(parent: Any, key: str) -> list[Any]:
    """A slice field: the list when it is one, else empty (Go's nil slice)."""
    if not isinstance(parent, dict):
        return []
    value = parent.get(key)
    return value if isinstance(value, list) else []


def string(parent: Any, key: str) -> str:
    """A plain string field: its value, else "" (Go's zero value)."""
    if not isinstance(parent, dict):
        return ""
    value = parent.get(key)
    return value if isinstance(value, str) else ""


def opt_string(parent: Any, key: str) -> str | None:
    """A *string field: None when nil."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    return value if isinstance(value, str) else None


def opt_bool(parent: Any, key: str) -> bool | None:
    """A *bool field: None when nil; 1/0 and "true" are not booleans in JSON."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    return value if isinstance(value, bool) else None


def opt_int(parent: Any, key: str) -> int | None:
    """An integer field: None when absent or not an integer (an integral float still counts)."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # JSON numbers may arrive as floats; an integral one is still that integer, so count it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def label(entry: dict[str, Any], index: int) -> str:
    """How a list entry is named in a path: its name, or its index when it has none."""
    name = string(entry, "name")
    return name if name else str(index)


@dataclass(frozen=True)
class ContainerRef:
    """One container of any kind, with the path prefix a DAG author would recognise."""

    path: str  # e.g. spec.initContainers[init]
    name: str
    fields: dict[str, Any]

    @property
    def security_context(self) -> dict[str, Any] | None:
        return struct(self.fields, "securityContext")


def containers(spec: Any) -> tuple[ContainerRef, ...]:
    """Every init, regular and ephemeral container that is readable as an object.

    Read afresh on every call: a cache keyed by the spec's identity answered a pod changed in
    place since its last evaluation with the containers it used to have."""
    return tuple(_read_containers(spec))


def _read_containers(spec: Any) -> Iterator[ContainerRef]:
    for field in CONTAINER_LISTS:
        for index, entry in enumerate(items(spec, field)):
            if not isinstance(entry, dict):
                continue  # a container that is not an object cannot be read: skip it
            yield ContainerRef(
                path=f"spec.{field}[{label(entry, index)}]",
                name=string(entry, "name"),
                fields=entry,
            )


def host_users_false(spec: Any) -> bool:
    """Upstream relaxPolicyForUserNamespacePod: hostUsers explicitly false."""
    return opt_bool(spec, "hostUsers") is False


def is_windows(spec: Any) -> bool:
    """Upstream's 1.25 Windows exemption: spec.os.name == "windows" exactly."""
    return string(struct(spec, "os"), "name") == "windows"
