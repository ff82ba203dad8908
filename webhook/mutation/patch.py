"""RFC 6902 patches that kube-apiserver can always apply.

kube-apiserver applies a webhook's patch with evanphx/json-patch v4 to the very object it sent
us; an op that fails to apply is a 500 for the user whatever the failurePolicy. So the patch is
built by a strict structural diff of that object and our result:
- a missing member is added whole (never an `add` below a parent that does not exist);
- lists of equal length are patched item by item, a list that only grew gets its new items
  appended at explicit indices, anything else is replaced whole (no index shifting);
- `True` and `1`, `False` and `0` are different values (Python's `==` says they are equal).

This is also cheaper than `jsonpatch.make_patch` on a whole pod, which dominated a prototype's
profile: unchanged subtrees are skipped by identity before they are compared.
"""

from __future__ import annotations

from typing import Any

from webhook.pod.json_values import json_equal


def escape_pointer_token(token: str) -> str:
    """RFC 6901: `~` becomes `~0` (first), `/` becomes `~1`."""
    if "~" not in token and "/" not in token:
        return token  # nearly every key: skip building two new strings
    return token.replace("~", "~0").replace("/", "~1")


def diff_patch(old: Any, new: Any) -> list[dict]:
    """The JSON patch that turns `old` into `new`."""
    ops: list[dict] = []
    _diff(old, new, "", ops)
    return ops


def _diff(old: Any, new: Any, path: str, ops: list[dict]) -> None:
    if old is new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": f"{path}/{escape_pointer_token(key)}"})
        for key, value in new.items():
            if key in old:
                before = old[key]
                if before is not value:  # shared, untouched subtrees are skipped unvisited
                    _diff(before, value, f"{path}/{escape_pointer_token(key)}", ops)
            else:
                ops.append({"op": "add", "path": f"{path}/{escape_pointer_token(key)}",
                            "value": value})
        return
    if isinstance(old, list) and isinstance(new, list):
        if len(old) <= len(new) and all(json_equal(a, b) for a, b in zip(old, new, strict=False)):
            for i in range(len(old), len(new)):
                ops.append({"op": "add", "path": f"{path}/{i}", "value": new[i]})
            return
        if len(old) == len(new):
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                _diff(a, b, f"{path}/{i}", ops)
            return
        ops.append({"op": "replace", "path": path, "value": new})
        return
    if not json_equal(old, new):
        ops.append({"op": "replace", "path": path, "value": new})


