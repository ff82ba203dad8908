"""The one shape every rule reports in: a violation a DAG author can act on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

UNSET = "<unset>"


def show_value(value: Any) -> str:
    """Render an offending value compactly, the same way in every message."""
    if value is None:
        return UNSET
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule at one field.

    `path` uses the container *name*, not its index, because that is what a DAG author
    wrote: `spec.containers[base].securityContext.privileged`.
    `rule` is `<source>: <check>`, e.g. `restricted: allowPrivilegeEscalation`,
    `airflow: imageRegistry`.
    """

    path: str
    requirement: str  # the fix, phrased as what must hold: "must be false"
    value: str  # show_value() of what the pod has
    rule: str

    @property
    def message(self) -> str:
        return f"{self.path} {self.requirement}, got {self.value} ({self.rule})"


def violation(path: str, requirement: str, value: Any, rule: str) -> Violation:
    return Violation(path=path, requirement=requirement, value=show_value(value), rule=rule)
