"""Kubernetes resource quantities ("500m", "4Gi"), parsed by the official client's own code.

`import kubernetes` loads the client's ~700 model classes: about 35 MB of RSS and half a
second in every server process, for one small function. So the client's
`kubernetes/utils/quantity.py` (it needs only `decimal` and `re`) is loaded on its own,
from the installed package, without running the package's `__init__`.
"""

from __future__ import annotations

import importlib.util
from decimal import ROUND_CEILING, Context, Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from webhook.kube.quantity_format import is_quantity


def _client_quantity_module() -> ModuleType:
    package = importlib.util.find_spec("kubernetes")  # locates the package, runs nothing
    if package is None or not package.submodule_search_locations:
        # Named, so the CLI can say which extra installs it instead of printing a traceback.
        raise ModuleNotFoundError("the kubernetes client package is not installed",
                                  name="kubernetes")
    path = Path(next(iter(package.submodule_search_locations))) / "utils" / "quantity.py"
    spec = importlib.util.spec_from_file_location("webhook._kubernetes_quantity", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_parse = _client_quantity_module().parse_quantity
# kube-apiserver stores a quantity at most to nano precision and rounds finer ones up
# (resource.Quantity: "0.1n" is stored as "1n"): compare what it will store, not what was typed.
_NANO = Decimal("1e-9")
_WIDE = Context(prec=400)  # quantize past this raises InvalidOperation: malformed to callers


def parse_quantity(value: Any) -> Decimal:
    """kubernetes.utils.parse_quantity, rounded up to nano precision as kube-apiserver stores
    it; ValueError/TypeError when malformed. NaN and Infinity (the client accepts both), a
    boolean, and anything outside Kubernetes' grammar (the client also takes "1_000", "1K" and
    non-ASCII digits, which kube-apiserver rejects with a 422 after our patch) are not
    quantities."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a quantity")
    if isinstance(value, (str, float)) and not is_quantity(value):
        raise ValueError(f"Invalid number format: {value}")
    parsed = _parse(value)
    if not parsed.is_finite():
        raise ValueError(f"{value!r} is not a finite quantity")
    if parsed.as_tuple().exponent < -9:  # type: ignore[operator]
        return parsed.quantize(_NANO, rounding=ROUND_CEILING, context=_WIDE)
    return parsed


_BINARY = (("Ei", 1024 ** 6), ("Pi", 1024 ** 5), ("Ti", 1024 ** 4), ("Gi", 1024 ** 3),
           ("Mi", 1024 ** 2), ("Ki", 1024))


def shown_total(name: str, total: Decimal) -> str:
    """A total as an admin writes it: 128Gi of memory, not 137438953472."""
    if name != "cpu" and "/" not in name and total == total.to_integral_value():
        for suffix, size in _BINARY:
            if total >= size and total % size == 0:
                return f"{total // size}{suffix}"
    return format(total.normalize(), "f") if abs(total.adjusted()) < 30 else str(total)
