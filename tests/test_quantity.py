"""Quantities are parsed by the official client's code, without importing the whole client."""

import subprocess
import sys
from decimal import Decimal

import pytest

from webhook.kube.quantity import parse_quantity


@pytest.mark.parametrize(("text", "value"), [
    ("4Gi", Decimal(4 * 1024**3)), ("500m", Decimal("0.5")), ("1", Decimal(1)), (2, Decimal(2)),
    ("1e3", Decimal(1000)), ("10Mi", Decimal(10 * 1024**2)), ("1E", Decimal(10**18)),
    (".5", Decimal("0.5")), ("+1", Decimal(1)), ("1k", Decimal(1000)),
])
def test_quantities_parse_like_kubernetes(text, value) -> None:
    assert parse_quantity(text) == value


# The last ones the client's parser alone accepts, and kube-apiserver rejects with a 422.
@pytest.mark.parametrize("text", ["lots", "4GB", "", "1.2.3", "Infinity", "1_000", "1K",
                                  "\uff11", "4 Gi", "1e", ".", float("inf")])
def test_malformed_quantities_raise(text) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_the_server_never_imports_the_kubernetes_client() -> None:
    # ~35 MB of RSS and half a second per worker, for one function
    code = ("import sys, webhook.serving.server, webhook.serving.app, webhook.policy.load, "
            "webhook.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
