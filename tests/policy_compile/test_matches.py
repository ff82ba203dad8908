"""spec.match: which pods a policy applies to, and scopes a DAG author could forge."""

from __future__ import annotations

import pytest

from webhook.airflow_pods import PodType
from webhook.policy.model import AIRFLOW_POD_TYPES, LabelSelector, Match

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def validation(match: str) -> str:
    return API + f"kind: ValidationPolicy\nmetadata: {{name: v}}\nspec:\n  match: {match}\n"


def granting(kind: str, match: str) -> str:
    extra = {"TaskPolicy": "  template: {}\n", "Exemption": "  reason: r\n",
             "OverridePolicy": ""}[kind]
    return API + f"kind: {kind}\nmetadata: {{name: g}}\nspec:\n  match: {match}\n" + extra


def test_a_match_compiles_to_what_it_says(compiled) -> None:
    policy = compiled(validation(
        "{podTypes: [kpo, other], namespaces: [a, b], dagIds: [d], taskIds: [t], "
        "labelSelector: {matchLabels: {z: '1', a: '2'}, matchExpressions: "
        "[{key: k, operator: In, values: [x, y]}, {key: e, operator: Exists}]}}"))
    assert policy.validation_policies[0].match == Match(
        frozenset({PodType.KPO, PodType.OTHER}), ("a", "b"), ("d",), ("t",),
        LabelSelector((("a", "2"), ("z", "1")), (("k", "In", ("x", "y")), ("e", "Exists", ()))))


def test_an_empty_match_is_every_airflow_pod(compiled) -> None:
    policy = compiled(API + "kind: ValidationPolicy\nmetadata: {name: v}\nspec: {}\n")
    assert policy.validation_policies[0].match == Match(AIRFLOW_POD_TYPES, (), (), (), None)
    policy = compiled(validation("{}"))
    assert policy.validation_policies[0].match == Match(AIRFLOW_POD_TYPES, (), (), (), None)


@pytest.mark.parametrize("operator", ["In", "NotIn"])
def test_a_set_operator_without_values_is_an_error(compile_yaml, operator: str) -> None:
    _, errors = compile_yaml(validation(
        f"{{labelSelector: {{matchExpressions: [{{key: a, operator: Exists}}, "
        f"{{key: k, operator: {operator}, values: []}}]}}, podTypes: [other]}}"))
    assert errors == [
        f"p.yaml:5:74: document 1 (ValidationPolicy/v): "
        f"spec.match.labelSelector.matchExpressions[1]: operator {operator} needs at least "
        f"one value"]


@pytest.mark.parametrize("operator", ["Exists", "DoesNotExist"])
def test_an_existence_operator_with_values_is_an_error(compile_yaml, operator: str) -> None:
    _, errors = compile_yaml(validation(
        f"{{labelSelector: {{matchExpressions: [{{key: a, operator: In, values: [x]}}, "
        f"{{key: k, operator: {operator}, values: [x]}}]}}, podTypes: [other]}}"))
    assert errors == [
        f"p.yaml:5:{112 + len(operator)}: document 1 (ValidationPolicy/v): "
        f"spec.match.labelSelector.matchExpressions[1].values: must be empty for operator "
        f"{operator}"]


def test_foreign_pods_need_a_label_selector(compile_yaml) -> None:
    _, errors = compile_yaml(validation("{podTypes: [executor, other]}"))
    assert errors == [
        "p.yaml:5:3: document 1 (ValidationPolicy/v): spec.match.labelSelector: podTypes "
        "'other' needs a labelSelector: foreign pods are never matched by namespace alone"]


@pytest.mark.parametrize("kind", ["TaskPolicy", "OverridePolicy", "Exemption"])
def test_a_policy_that_gives_cannot_be_scoped_by_airflow_pod_labels(compile_yaml,
                                                                    kind: str) -> None:
    _, errors = compile_yaml(granting(
        kind, "{dagIds: ['*'], podTypes: [executor, other], labelSelector: {matchLabels: {a: b}}}"))
    assert errors == [
        f"p.yaml:5:70: document 1 ({kind}/g): spec.match.labelSelector: cannot scope this on "
        "executor or KPO pods: their labels are written by the DAG author, so it would never "
        "apply; use namespaces, podTypes and dagIds (docs/threat-model.md)"]


def test_a_label_selector_on_foreign_pods_only_may_give(compiled) -> None:
    policy = compiled(granting("Exemption", "{dagIds: ['*'], podTypes: [other], "
                                            "labelSelector: {matchLabels: {a: b}}}"))
    assert policy.exemptions[0].match.selector == LabelSelector((("a", "b"),), ())


@pytest.mark.parametrize("ids", ["dagIds: [etl]", "dagIds: ['*'], taskIds: [load]",
                                 "dagIds: ['etl*']"])
def test_a_kpo_only_grant_cannot_be_scoped_by_dag_or_task(compile_yaml, ids: str) -> None:
    _, errors = compile_yaml(granting("OverridePolicy", f"{{podTypes: [kpo], {ids}}}"))
    assert errors == [
        "p.yaml:5:36: document 1 (OverridePolicy/g): spec.match.dagIds: a KPO pod's DAG and "
        "task ids are its author's choice and never select this, so it would never apply; "
        "scope it by namespaces with dagIds ['*'] (docs/threat-model.md)"]


@pytest.mark.parametrize("match", [
    "{podTypes: [kpo], dagIds: ['*'], taskIds: ['*'], namespaces: [team]}",
    "{podTypes: [executor, kpo], dagIds: [etl], taskIds: [load]}",
    "{podTypes: [executor], dagIds: [etl]}",
])
def test_grants_scoped_in_ways_the_author_cannot_forge_compile(compiled, match: str) -> None:
    assert len(compiled(granting("OverridePolicy", match)).override_policies) == 1


def test_a_grant_is_checked_as_a_match_first(compile_yaml) -> None:
    _, errors = compile_yaml(granting("Exemption", "{dagIds: ['*'], podTypes: [other]}"))
    assert errors == [
        "p.yaml:5:3: document 1 (Exemption/g): spec.match.labelSelector: podTypes 'other' "
        "needs a labelSelector: foreign pods are never matched by namespace alone"]
