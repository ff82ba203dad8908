"""How pod fragments combine: the one place the merge rules live.

Airflow merges `pod_override` by list *position*, concatenates env and volumes, and treats
`false`, `0`, `""`, `[]` and `{}` in an override as "unset". This module does what users expect
instead, close to Kubernetes' strategic merge patch:

1. Maps merge recursively, key by key.
2. Lists of named things merge by their Kubernetes merge key (table `MERGE_KEYS`): an item
   whose key matches an existing item is merged into it, in place; a new item is appended.
   Existing items keep their order, so container 0 stays container 0.
3. Lists with no merge key (`command`, `args`, `nodeSelectorTerms`, ...) are replaced whole.
4. Tolerations and `envFrom` have no name: they merge as sets (equal items are kept once),
   so a `spot` profile adds its toleration instead of dropping the template's.
5. In a fragment that wins (profile, task policy, annotation), explicit `false`, `0`, `""`,
   `[]` and `{}` count: `hostNetwork: false` turns host networking off and `tolerations: []`
   clears the list. `null` removes the field.
6. Container entries with no `image` only modify an existing container of that name; they
   never add a half-defined container. The name `"*"` targets every container of the list.
7. When a template only fills defaults (`fragment_wins=False`), what the pod says wins, and
   the pod's own empty lists and maps count as unset, because Airflow's KubernetesPodOperator
   serialises unset fields as `[]` and `{}`.
"""

from __future__ import annotations

from typing import Any

from webhook import budget
from webhook.pod.lists import CONTAINER_LISTS, MERGE_KEYS, SET_LISTS

ALL_CONTAINERS = "*"

_DEFAULT_KEY_VALUES = {"protocol": "TCP"}  # kube-apiserver defaults ports[].protocol


def merge_pod(pod: dict, fragment: dict, *, fragment_wins: bool = True) -> dict:
    """Return `pod` with `fragment` merged in; neither input is modified."""
    merged = merge_value(pod, fragment, fragment_wins, field=None)
    return merged if isinstance(merged, dict) else {}


def merge_value(base: Any, other: Any, fragment_wins: bool, field: str | None) -> Any:
    if isinstance(base, dict) and isinstance(other, dict):
        return _merge_maps(base, other, fragment_wins)
    if isinstance(base, list) and isinstance(other, list):
        return _merge_lists(base, other, fragment_wins, field)
    if fragment_wins:
        return without_nulls(other)
    if base is None or (_is_empty_collection(base) and other is not None):
        return without_nulls(other)
    return base


def _merge_maps(base: dict, other: dict, fragment_wins: bool) -> dict:
    out = dict(base)
    for key, value in other.items():
        if value is None:
            if fragment_wins:
                out.pop(key, None)
            continue
        if key in out:
            out[key] = merge_value(out[key], value, fragment_wins, key)
        elif key in CONTAINER_LISTS and isinstance(value, list) and value:
            # A pod without the list (often initContainers) gets only the fragment's whole
            # containers: rule 6 holds for "*" and image-less entries here too.
            added = _merge_lists([], value, fragment_wins, key)
            if added:
                out[key] = added
        else:
            out[key] = without_nulls(value)
    return out


def _merge_lists(base: list, other: list, fragment_wins: bool, field: str | None) -> list:
    if not other:
        return [] if fragment_wins else base
    if field in SET_LISTS:
        budget.check()
        present = {_hashable(item) for item in base}  # linear: no `item in base` scan per item
        return base + [without_nulls(item) for item in other if _hashable(item) not in present]
    key_fields = MERGE_KEYS.get(field or "")
    if key_fields is None or not _all_keyed(base, key_fields) or not _all_keyed(other, key_fields):
        if fragment_wins or not base:
            return without_nulls(other)
        return base
    return _merge_keyed(base, other, fragment_wins, field or "", key_fields)


def _merge_keyed(
    base: list, other: list, fragment_wins: bool, field: str, key_fields: tuple[str, ...]
) -> list:
    out = list(base)
    index = {_item_key(item, key_fields): i for i, item in enumerate(out)}
    containers = field in CONTAINER_LISTS
    everyone = [i for i in other if containers and i.get("name") == ALL_CONTAINERS]
    for item in other:
        budget.check()
        if containers and item.get("name") == ALL_CONTAINERS:
            continue
        key = _item_key(item, key_fields)
        if key in index:
            out[index[key]] = merge_value(out[index[key]], item, fragment_wins, None)
        elif not containers or item.get("image"):
            index[key] = len(out)
            out.append(without_nulls(item))
    # "*" last, so it also covers containers this same fragment adds (idempotent on reruns).
    for item in everyone:
        patch = {k: v for k, v in item.items() if k != "name"}
        out = [merge_value(c, patch, fragment_wins, None) for c in out]
    return out


def _all_keyed(items: list, key_fields: tuple[str, ...]) -> bool:
    return all(isinstance(i, dict) and i.get(key_fields[0]) is not None for i in items)


def _item_key(item: dict, key_fields: tuple[str, ...]) -> tuple:
    return tuple(item.get(f, _DEFAULT_KEY_VALUES.get(f)) for f in key_fields)


def _hashable(value: Any) -> Any:
    """A hashable stand-in equal for equal JSON values, as `==` compares them: maps in any
    key order, lists in order."""
    if isinstance(value, dict):
        return frozenset((k, _hashable(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _is_empty_collection(value: Any) -> bool:
    return isinstance(value, (list, dict)) and not value


def without_nulls(value: Any) -> Any:
    """Copy a fragment's value, dropping `null` members (a null means "remove", never "set")."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value
