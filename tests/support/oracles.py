"""Oracles that owe nothing to the code under test (docs/testing.md, "Tests that could not
fail")."""

from __future__ import annotations

import json


def canonical_json(doc: object) -> str:
    """A JSON document as one canonical text: an oracle for "the same JSON value" that owes
    nothing to the code under test (and tells `true` from `1`, unlike Python's `==`)."""
    return json.dumps(doc, sort_keys=True, allow_nan=False)


def internal_errors(violations: object) -> list:
    """The violations that stand for a crash inside the webhook, not for the pod: the Pod
    Security registry, the Airflow rules and validate_pod each turn an exception into one
    (fail closed), so "a list came back" proves nothing; "none of these" does."""
    return [v for v in violations  # type: ignore[attr-defined]
            if v.requirement.startswith("must be readable by") or v.rule == "webhook: internal"]
