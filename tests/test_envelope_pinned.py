"""Envelope details pinned by mutation testing (docs/testing.md): how totals are shown, and a
check that crashes failing closed under its own rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.test_envelope import ENVELOPE
from webhook.envelope import registry as env
from webhook.kube.quantity import shown_total


@pytest.mark.parametrize(("name", "total", "shown"), [
    ("memory", Decimal(128 * 1024 ** 3), "128Gi"),
    ("memory", Decimal(1536 * 1024 ** 2), "1536Mi"),
    ("memory", Decimal(1024), "1Ki"),
    ("memory", Decimal(1000), "1000"),
    ("memory", Decimal(0), "0"),
    ("memory", Decimal("0.5"), "0.5"),
    ("cpu", Decimal(2048), "2048"),  # cpu is counted in cores, never in Ki
    ("cpu", Decimal("2.5"), "2.5"),
    ("nvidia.com/gpu", Decimal(1024), "1024"),  # a device count, never in Ki
    ("cpu", Decimal("1E+30"), "1E+30"),
    ("cpu", Decimal("1E+29"), "100000000000000000000000000000"),
])
def test_totals_are_shown_as_admins_write_them(name, total, shown) -> None:
    assert shown_total(name, total) == shown


def test_a_crashing_check_fails_closed_under_its_rule(monkeypatch) -> None:
    def boom(pod, envelope, ctx):
        raise RuntimeError("bug")

    rule, _ = env.ENVELOPE_CHECKS["nodeName"]
    monkeypatch.setitem(env.ENVELOPE_CHECKS, "nodeName", (rule, env.Check(boom)))
    found = env.check_pod({"spec": {}}, ENVELOPE, "example.com/pool")
    crashed = [v for v in found if v.requirement.startswith("must be readable")]
    assert [(v.path, v.requirement, v.value, v.rule) for v in crashed] == [
        ("spec", "must be readable by the envelope checks", '"RuntimeError"', rule)]


def test_a_toleration_without_operator_is_equal_as_kubernetes_defaults_it() -> None:
    allowed = {"key": "dedicated", "value": "airflow", "effect": "NoSchedule"}
    assert env.toleration_allowed(allowed, ENVELOPE)
    assert env.toleration_allowed({**allowed, "operator": "Equal"}, ENVELOPE)
    assert not env.toleration_allowed({**allowed, "operator": "Exists"}, ENVELOPE)
    assert not env.toleration_allowed({**allowed, "value": "prod"}, ENVELOPE)
    assert not env.toleration_allowed("junk", ENVELOPE)
    assert not env.toleration_allowed(["dedicated"], ENVELOPE)
