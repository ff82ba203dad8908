"""Check a pod fragment's fields and types against the Kubernetes Pod model.

kube-apiserver silently drops unknown fields (a typo like `resource:` would do nothing) and
answers a wrong type with a 500 after our patch: both are caught here, with the field's path.
The table comes from the official client's models (tools/gen_pod_fields.py).
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

from webhook.quantity import parse_quantity

_QUANTITY_MAPS = ("resources.limits", "resources.requests", "spec.overhead")


@cache
def _model() -> dict:
    text = resources.files("webhook").joinpath("schema/pod-fields.json").read_text()
    return json.loads(text)


def fragment_errors(fragment: Any, path: str = "") -> list[tuple[str, str]]:
    """(field path, reason) for every unknown field or wrong type in a pod fragment."""
    errors: list[tuple[str, str]] = []
    if not isinstance(fragment, dict):
        return [(path or "<root>", f"must be an object, got {_json_type(fragment)}")]
    shape = json_shape_errors(fragment, path)
    if shape:
        return shape  # the model check below assumes JSON: string keys, finite numbers
    body = {k: v for k, v in fragment.items() if k not in ("apiVersion", "kind")}
    _check(body, _model()["root"], path, errors)
    return errors


def json_shape_errors(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Where a parsed fragment holds what JSON cannot (YAML gives keys that are numbers or
    booleans, dates, sets, binary; both give NaN and Infinity): Kubernetes would refuse it,
    and our merge and patch must never see it. Iterative: depth is bounded by the parser."""
    errors: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    errors.append((f"{where}.{key!r}" if where else repr(key),
                                   f"map keys must be strings, got {_json_type(key)} {key!r} "
                                   "(quote it)"))
                    continue
                stack.append((sub, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            errors.append((where or "<root>", f"{item!r} is not a number Kubernetes accepts "
                           "(NaN and Infinity are not JSON)"))
        elif item is not None and not isinstance(item, (str, int, float, bool)):
            errors.append((where or "<root>", f"must be a JSON value, got "
                           f"{type(item).__name__} {str(item)[:40]!r} (quote it)"))
    return sorted(errors)


def _check(value: Any, type_ref: Any, path: str, errors: list[tuple[str, str]]) -> None:
    if value is None:
        return  # null removes a field: valid anywhere
    if isinstance(type_ref, dict) and "list" in type_ref:
        if not isinstance(value, list):
            errors.append((path, f"must be a list, got {_json_type(value)}"))
            return
        for i, item in enumerate(value):
            label = item.get("name") if isinstance(item, dict) else None
            _check(item, type_ref["list"], f"{path}[{label if label else i}]", errors)
        return
    if isinstance(type_ref, dict) and "map" in type_ref:
        if not isinstance(value, dict):
            errors.append((path, f"must be a map, got {_json_type(value)}"))
            return
        if path.endswith(_QUANTITY_MAPS):
            # Quantities may be written as numbers (`cpu: 1`): kube-apiserver accepts both.
            errors.extend(_quantity_errors(value, path))
            return
        for key, item in value.items():
            _check(item, type_ref["map"], f"{path}.{key}", errors)
        return
    if isinstance(type_ref, str) and type_ref in _model()["types"]:
        if not isinstance(value, dict):
            errors.append((path, f"must be an object, got {_json_type(value)}"))
            return
        fields = _model()["types"][type_ref]
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key not in fields:
                errors.append((sub, "is not a field of " + _kind_name(type_ref)))
            else:
                _check(item, fields[key], sub, errors)
        return
    reason = _scalar_error(value, type_ref)
    if reason:
        errors.append((path, reason))


def _quantity_errors(value: dict, path: str) -> list[tuple[str, str]]:
    out = []
    for key, item in value.items():
        try:
            if isinstance(item, bool):
                raise TypeError("a boolean is not a quantity")
            parse_quantity(item)
        except (ValueError, TypeError, ArithmeticError):
            out.append((f"{path}.{key}", f"is not a Kubernetes quantity: {item!r}"))
    return out


def _scalar_error(value: Any, type_ref: str) -> str | None:
    ok = {
        "str": isinstance(value, str),
        "datetime": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        # IntOrString and quantities
        "object": isinstance(value, (str, int, float)) and not isinstance(value, bool),
    }.get(type_ref, True)
    if ok:
        return None
    wanted = {"str": "a string", "datetime": "a timestamp string", "bool": "true or false",
              "int": "an integer", "float": "a number", "object": "a string or a number"}
    return f"must be {wanted.get(type_ref, type_ref)}, got {_json_type(value)}"


def _kind_name(type_ref: str) -> str:
    return type_ref.removeprefix("V1").removeprefix("CoreV1")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "list", str: "string", int: "integer", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)
