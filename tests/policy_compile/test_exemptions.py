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


def test_an_exemption_is_a_grant(compile_yaml) -> None:
    _, errors = compile_yaml(exemption("{match: {podTypes: [kpo], taskIds: [t]}, reason: r}",
                                       "e"))
    assert errors == [
        "p.yaml:4:8: document 1 (Exemption/e): spec.match.dagIds: a KPO pod's DAG and task "
        "ids are its author's choice and never select this, so it would never apply; scope "
        "it by namespaces with dagIds ['*'] (docs/threat-model.md)"]
