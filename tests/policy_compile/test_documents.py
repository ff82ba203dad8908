"""A document's first checks: duplicate keys, the document schema, its kind's schema, names."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from webhook.policy.compile import PolicyDocument, compile_policies, schema_errors

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def test_a_key_written_twice_is_reported_where_it_is_written_again(compile_yaml) -> None:
    result, errors = compile_yaml(API + "kind: Profile\nmetadata: {name: p}\nspec:\n"
                                  "  template: {}\n  description: a\n  description: b\n")
    assert result is None
    assert errors == [
        "p.yaml:7:3: document 1 (Profile/p): spec.description: bad value 'description': is "
        "written twice in one map; YAML would silently keep only the last"]


def test_a_document_that_is_not_a_map(compile_yaml) -> None:
    _, errors = compile_yaml("- a\n- b\n")
    assert errors == ["p.yaml:1:1: document 1: <document>: must be a mapping with apiVersion, "
                      "kind, metadata and spec"]


@pytest.mark.parametrize(("text", "expected"), [
    (API + "kind: Profil\nmetadata: {name: p}\nspec: {templat: {}}\n",
     ["p.yaml:2:7: document 1 (Profil/p): kind: bad value 'Profil': must be one of "
      "PodTemplate, Profile, TaskPolicy, OverridePolicy, Envelope, ValidationPolicy, "
      "Exemption, Settings; did you mean 'Profile'?"]),
    (API + "kind: Profile\nmetadata: {name: p}\nspec: {template: {}}\nextra: 1\n",
     ["p.yaml:5:1: document 1 (Profile/p): extra: bad value 'extra': is not a field here "
      "(fields: apiVersion, kind, metadata, spec)"]),
    (API + "kind: Profile\nmetadata: {name: p}\n",
     ["p.yaml:1:1: document 1 (Profile/p): <document>: 'spec' is a required property"]),
    (API + "kind: PodTemplate\nmetadata: {name: p}\nspec: {template: {}, priority: high}\n",
     ["p.yaml:4:32: document 1 (PodTemplate/p): spec.priority: bad value 'high': is not of "
      "type 'integer'"]),
    (API + "kind: Settings\nmetadata: {name: s}\nspec: {limits: {env: 0.5, envFrom: 0}}\n",
     ["p.yaml:4:22: document 1 (Settings/s): spec.limits.env: bad value '0.5': is less "
      "than the minimum of 1",
      "p.yaml:4:22: document 1 (Settings/s): spec.limits.env: bad value '0.5': is not of "
      "type 'integer'",
      "p.yaml:4:36: document 1 (Settings/s): spec.limits.envFrom: bad value '0': is less "
      "than the minimum of 1"]),
    (API + "kind: ValidationPolicy\nmetadata: {name: v}\nspec: {rules: {resources: "
           "{requireLimits: true}}}\n",
     ["p.yaml:4:43: document 1 (ValidationPolicy/v): spec.rules.resources.requireLimits: "
      "bad value 'true': True is not of type 'array'"]),
    (API + "kind: Exemption\nmetadata: {name: e}\nspec: {match: {namespaces: [a, 1]}, "
           "reason: r, expires: '2030-13-01'}\n",
     ["p.yaml:4:32: document 1 (Exemption/e): spec.match.namespaces[1]: bad value '1': is "
      "not a namespace name (a DNS label: lowercase alphanumeric and '-', at most 63)",
      "p.yaml:4:32: document 1 (Exemption/e): spec.match.namespaces[1]: bad value '1': is "
      "not of type 'string'",
      "p.yaml:4:57: document 1 (Exemption/e): spec.expires: bad value '2030-13-01': must be "
      "a date, YYYY-MM-DD"]),
])
def test_schema_errors_name_the_field_and_drop_the_repeated_value(compile_yaml, text: str,
                                                                  expected: list[str]) -> None:
    result, errors = compile_yaml(text)
    assert result is None
    assert errors == expected


def test_a_bad_name_is_reported_beside_the_schema_errors(compile_yaml) -> None:
    _, errors = compile_yaml(API + "kind: PodTemplate\nmetadata: {name: t}\nspec: "
                             "{template: {}, priority: x, lockedFields: [metadata.name]}\n")
    assert errors == [
        "p.yaml:4:32: document 1 (PodTemplate/t): spec.priority: bad value 'x': is not of "
        "type 'integer'",
        "p.yaml:4:50: document 1 (PodTemplate/t): spec.lockedFields[0]: bad value "
        "'metadata.name': only spec fields can be locked; Airflow owns the metadata"]


def test_names_of_an_unknown_kind_or_a_spec_that_is_no_map_are_not_checked(compile_yaml
                                                                          ) -> None:
    _, errors = compile_yaml(API + "kind: Nope\nmetadata: {name: n}\nspec: {lockedFields: "
                             "[metadata.name]}\n---\n" + API + "kind: PodTemplate\n"
                             "metadata: {name: t}\nspec: [metadata.name]\n")
    assert errors == [
        "p.yaml:2:7: document 1 (Nope/n): kind: bad value 'Nope': must be one of PodTemplate, "
        "Profile, TaskPolicy, OverridePolicy, Envelope, ValidationPolicy, Exemption, Settings",
        "p.yaml:9:7: document 2 (PodTemplate/t): spec: ['metadata.name'] is not of type "
        "'object'"]


def test_schema_errors_as_plain_text_for_other_callers() -> None:
    validator = Draft202012Validator({
        "type": "object", "additionalProperties": False,
        "properties": {"mode": {"enum": ["warn", "deny"]}, "items": {
            "type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
            "v": {"const": "x"}, "when": {"type": "string", "format": "email"}}})
    assert schema_errors(validator, {"mdoe": 1, "mode": "den", "items": ["ok", "No"],
                                     "v": "y", "when": 3}, "spec") == [
        ("spec.mdoe", "is not a field here (fields: mode, items, v, when); did you mean "
                      "'mode'?"),
        ("spec.items[1]", "must match the pattern ^[a-z]+$"),
        ("spec.mode", "must be one of warn, deny; did you mean 'deny'?"),
        ("spec.v", "must be x"),
        ("spec.when", "is not of type 'string'")]
    assert schema_errors(validator, {"mode": 1, "v": 2}, "") == [
        ("mode", "is not one of ['warn', 'deny']"), ("v", "'x' was expected")]
    assert schema_errors(validator, [], "") == [("<document>", "[] is not of type 'object'")]
    checked = Draft202012Validator({"type": "string", "format": "ipv4"},
                                   format_checker=FormatChecker())
    assert schema_errors(checked, "x", "spec.ip") == [("spec.ip", "must be a ipv4")]
    assert schema_errors(Draft202012Validator({"enum": ["a", "b"]}), "c", "") == [
        ("<document>", "must be one of a, b")]
    assert schema_errors(Draft202012Validator({"const": "a"}), "c", "") == [
        ("<document>", "must be a")]
    assert schema_errors(Draft202012Validator({"additionalProperties": False}), {"k": 1},
                         "") == [("k", "is not a field here (fields: )")]


def test_a_bad_name_at_a_map_key_is_shown_at_the_key(compile_yaml) -> None:
    _, errors = compile_yaml(API + "kind: ValidationPolicy\nmetadata: {name: v}\nspec: {rules: "
                             "{resources: {maxRequests: {'bad name!': '1', cpu: 2}}}}\n")
    assert errors == [
        "p.yaml:4:42: document 1 (ValidationPolicy/v): spec.rules.resources.maxRequests.bad "
        "name!: bad value 'bad name!': is not a Kubernetes resource name (cpu, memory, "
        "ephemeral-storage, hugepages-<size> or a domain/name like nvidia.com/gpu)"]


def test_a_bad_name_suggests_the_closest_one(compile_yaml) -> None:
    _, errors = compile_yaml(API + "kind: Exemption\nmetadata: {name: e}\nspec: {match: "
                             "{namespaces: [a]}, reason: r, rules: ['envelope: label']}\n")
    assert errors == [
        "p.yaml:4:53: document 1 (Exemption/e): spec.rules[0]: bad value 'envelope: label': "
        "no Envelope check 'label'; did you mean 'envelope: labels'?"]


def test_a_document_built_in_code_still_quotes_the_bad_kind_and_api_version() -> None:
    body = {"apiVersion": "v1", "kind": "Profil", "metadata": {"name": "p"}, "spec": {}}
    _, errors = compile_policies([PolicyDocument("code", 0, body)], "r")
    assert [str(e) for e in errors] == [
        "code: document 1 (Profil/p): apiVersion: bad value 'v1': must be "
        "airflow-pod-webhook.io/v1alpha1",
        "code: document 1 (Profil/p): kind: bad value 'Profil': must be one of PodTemplate, "
        "Profile, TaskPolicy, OverridePolicy, Envelope, ValidationPolicy, Exemption, Settings; "
        "did you mean 'Profile'?"]
