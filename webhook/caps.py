"""Caps on the lists and maps one pod may carry, checked before any merging or judging.

Pure: `check_caps(pod, limits)` reads a pod (a dict as decoded from a review) and returns
what exceeds Settings `limits`, each naming the field, the count and the cap. Its own work is
linear in the pod and stops at the `values` cap, so a hostile 3 MiB review is refused after
one bounded walk instead of being merged and judged list by list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webhook import budget
from webhook.pod.lists import CONTAINER_LISTS
from webhook.policy.model import Limits
from webhook.rules import known

# Per container: list field -> (Settings limits key, Limits attribute)
_PER_CONTAINER = (("env", "env", "env"), ("envFrom", "envFrom", "env_from"),
                  ("volumeMounts", "volumeMounts", "volume_mounts"), ("ports", "ports", "ports"))
# Lists and maps with a cap of their own: the catch-all `listItems` leaves them alone.
_OWN_CAP = frozenset({*CONTAINER_LISTS, "env", "envFrom", "volumeMounts", "ports", "volumes",
                      "tolerations", "labels", "annotations"})
_CHECK_EVERY = 4096  # values walked between two looks at the time budget
CAP_RULE = known("webhook: limits")


@dataclass(frozen=True, order=True)
class CapExceeded:
    """One field of a pod past its cap."""

    path: str
    cap: str  # the Settings `limits` key
    limit: int
    count: int
    unit: str = "items"

    @property
    def message(self) -> str:
        if self.unit in ("values", "characters"):  # the walk stops counting at the cap
            what = "values" if self.unit == "values" else "characters of keys and strings"
            return (f"{self.path}: more than {self.limit} {what} in all "
                    f"(Settings limits.{self.cap})")
        return (f"{self.path}: {self.count} {self.unit}, more than the cap of {self.limit} "
                f"(Settings limits.{self.cap})")


def check_caps(pod: Any, limits: Limits, *, walk: bool = True) -> list[CapExceeded]:
    """Every cap `pod` exceeds, sorted by field; [] when it fits them all.

    The named caps are checked first (a few len() calls); only a pod within them is walked
    whole for the `listItems` and `values` caps (unless `walk` is False: a pod already walked,
    then changed only by bounded fragments), and the walk stops at the first excess."""
    if not isinstance(pod, dict):
        return []
    found = _named_caps(pod, limits)
    if found or not walk:
        return sorted(found)
    return _walk(pod, limits)


def describe(found: list[CapExceeded], limit: int) -> str:
    """One sentence for a denial: up to `limit` of them, then how many more."""
    shown = "; ".join(f.message for f in found[:limit])
    rest = len(found) - limit
    return shown + (f"; … and {rest} more" if rest > 0 else "")


def _named_caps(pod: dict, limits: Limits) -> list[CapExceeded]:
    found: list[CapExceeded] = []
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    labels = meta.get("labels")
    if isinstance(labels, dict) and len(labels) > limits.labels:
        found.append(CapExceeded("metadata.labels", "labels", limits.labels, len(labels),
                                 "labels"))
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        size = annotations_bytes(annotations, limits.annotations_bytes)
        if size > limits.annotations_bytes:
            found.append(CapExceeded("metadata.annotations", "annotationsBytes",
                                     limits.annotations_bytes, size, "bytes"))
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    for name, cap, limit in (("volumes", "volumes", limits.volumes),
                             ("tolerations", "tolerations", limits.tolerations)):
        items = spec.get(name)
        if isinstance(items, list) and len(items) > limit:
            found.append(CapExceeded(f"spec.{name}", cap, limit, len(items)))
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        if not isinstance(containers, list):
            continue
        if len(containers) > limits.containers:
            found.append(CapExceeded(f"spec.{list_name}", "containers", limits.containers,
                                     len(containers)))
            continue
        for index, container in enumerate(containers):
            if not isinstance(container, dict):
                continue
            for field, cap, attribute in _PER_CONTAINER:
                items, limit = container.get(field), getattr(limits, attribute)
                if isinstance(items, (list, dict)) and len(items) > limit:
                    found.append(CapExceeded(
                        f"spec.{list_name}[{_container_key(container, index)}].{field}",
                        cap, limit, len(items)))
    return found


def annotations_bytes(annotations: dict, stop_after: int | None = None) -> int:
    """Keys plus values in UTF-8 bytes, as kube-apiserver sums them (256 KiB at most there);
    counting stops once past `stop_after`."""
    total = 0
    for key, value in annotations.items():
        total += len(str(key).encode("utf-8", "replace"))
        total += len(value.encode("utf-8", "replace")) if isinstance(value, str) else len(
            repr(value))
        if stop_after is not None and total > stop_after:
            return total
    return total


def _container_key(container: dict, index: int) -> str:
    name = container.get("name")
    return name if isinstance(name, str) and name and len(name) <= 63 else str(index)


def _walk(pod: dict, limits: Limits) -> list[CapExceeded]:
    """The catch-all caps: no other list or map longer than listItems, no more than
    `values` JSON values and `text` characters of keys and strings in all. Stops at the first
    excess. One tight loop over the containers (no per-value allocation): the path is found
    again only for a refusal."""
    cap = limits.list_items
    if len(pod) > cap:
        return [CapExceeded("<pod>", "listItems", cap, len(pod), "keys")]
    stack: list[Any] = [pod]
    seen = popped = text = 0
    while stack:
        node = stack.pop()
        popped += 1
        if popped % _CHECK_EVERY == 0:
            budget.check()
        seen += len(node)
        if seen > limits.values:
            return [CapExceeded("<pod>", "values", limits.values, limits.values + 1, "values")]
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str):
                    text += len(key)
                if isinstance(child, (dict, list)):
                    if len(child) > cap and key not in _OWN_CAP:
                        return [_too_long(pod, child, cap)]
                    stack.append(child)
                elif isinstance(child, str):
                    text += len(child)
        else:
            for child in node:
                if isinstance(child, (dict, list)):
                    if len(child) > cap:
                        return [_too_long(pod, child, cap)]
                    stack.append(child)
                elif isinstance(child, str):
                    text += len(child)
        if text > limits.text:
            return [CapExceeded("<pod>", "text", limits.text, limits.text + 1, "characters")]
    return []


def _too_long(pod: dict, node: dict | list, cap: int) -> CapExceeded:
    return CapExceeded(_path_to(pod, node), "listItems", cap, len(node),
                       "keys" if isinstance(node, dict) else "items")


def _path_to(root: Any, target: Any) -> str:
    """Where `target` (by identity) sits in `root`, as a field path."""
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path or "<pod>"
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in node.items()
                         if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node)
                         if isinstance(v, (dict, list)))
    return "<pod>"
