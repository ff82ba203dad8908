"""OverridePolicy: which fields and profiles DAG authors may ask for by annotation."""

from __future__ import annotations

from webhook.pod.field_paths import parse_path
from webhook.policy.model import Match, OverridePolicy, Source

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"
PROFILES = (API + "kind: Profile\nmetadata: {name: small}\nspec: {template: {}}\n---\n"
            + API + "kind: Profile\nmetadata: {name: big}\nspec: {template: {}}\n---\n")


def override(spec: str) -> str:
    return API + f"kind: OverridePolicy\nmetadata: {{name: o}}\nspec: {spec}\n"


def test_an_override_policy_compiles_to_parsed_fields_and_profiles(compiled) -> None:
    policy = compiled(PROFILES + override(
        "{match: {namespaces: [team]}, allowedFields: [spec.nodeSelector, "
        "'spec.containers[*].resources'], allowedProfiles: [small, '*']}"))
    assert policy.override_policies == (OverridePolicy(
        "o", Match(namespaces=("team",)),
        (tuple(parse_path("spec.nodeSelector")),
         tuple(parse_path("spec.containers[*].resources"))),
        ("small", "*"), Source("p.yaml", 2)),)


def test_by_default_every_profile_and_no_field(compiled) -> None:
    policy = compiled(override("{}"))
    assert policy.override_policies == (OverridePolicy("o", Match(), (), ("*",),
                                                       Source("p.yaml", 0)),)


def test_policies_are_kept_in_name_order(compiled) -> None:
    policy = compiled(override("{}").replace("name: o", "name: z") + "---\n" + override("{}"))
    assert [p.name for p in policy.override_policies] == ["o", "z"]


def test_an_unknown_profile_names_the_ones_there_are(compile_yaml) -> None:
    _, errors = compile_yaml(PROFILES + override("{allowedProfiles: ['*', smal, huge]}"))
    assert errors == [
        "p.yaml:14:31: document 3 (OverridePolicy/o): spec.allowedProfiles[1]: bad value "
        "'smal': no Profile named 'smal' (profiles: big, small); did you mean 'small'?",
        "p.yaml:14:37: document 3 (OverridePolicy/o): spec.allowedProfiles[2]: bad value "
        "'huge': no Profile named 'huge' (profiles: big, small)"]
    _, errors = compile_yaml(override("{allowedProfiles: [small]}"))
    assert errors == [
        "p.yaml:4:26: document 1 (OverridePolicy/o): spec.allowedProfiles[0]: bad value "
        "'small': no Profile named 'small' (profiles: none)"]



def test_an_override_policy_is_a_grant(compile_yaml) -> None:
    _, errors = compile_yaml(override("{match: {podTypes: [kpo], dagIds: [etl]}}"))
    assert errors == [
        "p.yaml:4:41: document 1 (OverridePolicy/o): spec.match.dagIds: a KPO pod's DAG and "
        "task ids are its author's choice and never select this, so it would never apply; "
        "scope it by namespaces with dagIds ['*'] (docs/threat-model.md)"]
