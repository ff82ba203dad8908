"""Profile: a named fragment a DAG author asks for by annotation."""

from __future__ import annotations

from webhook.airflow_pods import PodType
from webhook.policy.model import Match, Profile, Source

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def test_a_profile_compiles_with_its_description_match_and_template(compiled) -> None:
    policy = compiled(API + "kind: Profile\nmetadata: {name: other}\nspec: {template: {}}\n---\n"
                      + API + "kind: Profile\nmetadata: {name: big}\nspec:\n"
                      "  description: lots of memory\n  match: {podTypes: [kpo]}\n"
                      "  template: {kind: Pod, spec: {priorityClassName: high}}\n")
    assert policy.profiles["big"] == Profile(
        "big", "lots of memory", Match(frozenset({PodType.KPO})),
        {"spec": {"priorityClassName": "high"}}, Source("p.yaml", 1))
    assert policy.profiles["other"] == Profile("other", "", Match(), {}, Source("p.yaml", 0))


def test_a_profile_template_is_checked_as_a_fragment(compile_yaml) -> None:
    _, errors = compile_yaml(API + "kind: Profile\nmetadata: {name: p}\nspec:\n"
                             "  match: {podTypes: [other]}\n"
                             "  template: {metadata: {labels: {dag_id: x}}}\n")
    assert errors == [
        "p.yaml:5:3: document 1 (Profile/p): spec.match.labelSelector: podTypes 'other' needs "
        "a labelSelector: foreign pods are never matched by namespace alone",
        "p.yaml:6:34: document 1 (Profile/p): spec.template.metadata.labels.dag_id: bad value "
        "'dag_id': Airflow owns this key (it selects and adopts pods by it)"]
