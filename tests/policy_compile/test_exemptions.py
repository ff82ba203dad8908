"""Exemption: rules waived for some pods, with a reason and an optional expiry date."""

from __future__ import annotations

from datetime import date

from webhook.policy.model import Exemption, Match, Source

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def exemption(spec: str, name: str) -> str:
    return API + f"kind: Exemption\nmetadata: {{name: {name}}}\nspec: {spec}\n"


def test_an_exemption_compiles_with_its_rules_reason_and_expiry(compiled) -> None:
    policy = compiled(
        exemption("{match: {namespaces: [a]}, reason: all, expires: '2030-01-31'}", "b")
        + "---\n" + exemption("{match: {namespaces: [b]}, reason: one, "
                              "rules: ['envelope: labels']}", "a"))
    assert policy.exemptions == (
        Exemption("a", Match(namespaces=("b",)), ("envelope: labels",), "one", None,
                  Source("p.yaml", 1)),
        Exemption("b", Match(namespaces=("a",)), ("*",), "all", date(2030, 1, 31),
                  Source("p.yaml", 0)))
