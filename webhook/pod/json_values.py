"""JSON values compared as JSON, not as Python: `True` is not `1`, `1` is `1.0`."""

from __future__ import annotations

from typing import Any


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values that tells booleans from numbers."""
    if a is b:
        return True
    if type(a) is not type(b):
        # 1 and 1.0 are the same JSON number; True and 1 are not the same JSON value.
        numeric = (int, float)
        return (
            isinstance(a, numeric) and isinstance(b, numeric)
            and not isinstance(a, bool) and not isinstance(b, bool) and a == b
        )
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b
