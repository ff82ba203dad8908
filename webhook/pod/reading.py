"""Reading a pod the way the Go types would decode it: missing, null or wrongly typed fields
count as unset, and nothing here raises. Shared by the Airflow rules and the envelope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from webhook.pod.lists import CONTAINER_LISTS


def map_at(parent: Any, key: str) -> dict:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def list_at(parent: Any, key: str) -> list:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, list) else []


def str_at(parent: Any, key: str) -> str:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, str) else ""


def spec_of(pod: Any) -> dict:
    return map_at(pod, "spec")


def path_key(key: str) -> str:
    """A map key in a path: brackets when it holds dots or slashes (label and resource keys)."""
    return f"[{key}]" if ("." in key or "/" in key) else f".{key}"


@dataclass(frozen=True)
class Container:
    path: str  # spec.containers[base]
    kind: str  # initContainers | containers | ephemeralContainers
    fields: dict


def containers(pod: Any) -> Iterator[Container]:
    """Every container of every kind, named as the DAG author wrote it (index if unnamed)."""
    spec = spec_of(pod)
    for kind in CONTAINER_LISTS:
        for index, entry in enumerate(list_at(spec, kind)):
            if not isinstance(entry, dict):
                continue  # not an object: Kubernetes cannot decode it, nothing to judge
            name = str_at(entry, "name") or str(index)
            yield Container(f"spec.{kind}[{name}]", kind, entry)
