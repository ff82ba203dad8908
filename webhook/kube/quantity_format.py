"""Whether a value is written as Kubernetes writes quantities ("500m", "4Gi"), with no
dependency at all: the DAG-author helper and the Pod-model checks run in an Airflow image
without the kubernetes client. Comparing amounts needs webhook.kube.quantity.parse_quantity.
"""

from __future__ import annotations

import math
import re
from typing import Any

# The grammar kube-apiserver parses (apimachinery resource.ParseQuantity): a signed decimal,
# then a binary (Ki..Ei) or decimal (n u m k M G T P E) suffix or an exponent (e3, E-2).
KUBERNETES_QUANTITY = re.compile(
    r"[+-]?(?=\.?[0-9])[0-9]*(?:\.[0-9]*)?(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")


def is_quantity(value: Any) -> bool:
    """A string in the grammar above (surrounding spaces ignored), or a finite number."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and KUBERNETES_QUANTITY.fullmatch(value.strip()) is not None


def is_negative(value: Any) -> bool:
    text = str(value).strip()
    return text.startswith("-") and any(c in "123456789" for c in text.split("e")[0])
