"""How a compile error reads: file, line and column, document, field, the bad value, a hint."""

from __future__ import annotations

from webhook.policy.compile import PolicyDocument, PolicyError, compile_policies
from webhook.policy.compile.context import Context

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def test_an_error_reads_as_the_linter_prints_it() -> None:
    assert str(PolicyError("a.yaml", 0, "spec.x", "is wrong", 3, 7, "Profile/p", "'v'",
                           ("w",))) == ("a.yaml:3:7: document 1 (Profile/p): spec.x: bad value "
                                        "'v': is wrong; did you mean 'w'?")
    assert str(PolicyError("a.yaml", 2, "", "is wrong")) == "a.yaml: document 3: is wrong"
    assert str(PolicyError("a.yaml", -1, "spec.x", "folder", 4, 1, "P/p", "'v'")) == \
        "a.yaml:4:1: folder"
    assert str(PolicyError("a.yaml", 0, "spec.x", "cannot read", 2, 5, "P/p", "'v'",
                           unreadable=True)) == "a.yaml:2:5: cannot read"
    assert str(PolicyError("a.yaml", -1, "", "no folder")) == "a.yaml: no folder"


def test_a_document_built_in_code_has_no_line_and_quotes_nothing_it_was_not_given() -> None:
    body = {"apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": "OverridePolicy",
            "metadata": {"name": "o"}, "spec": {"allowedProfiles": ["nope"]}}
    result, errors = compile_policies([PolicyDocument("code", 0, body)], "r")
    assert result is None
    assert errors == [PolicyError("code", 0, "spec.allowedProfiles[0]",
                                  "no Profile named 'nope' (profiles: none)", 0, 0,
                                  "OverridePolicy/o")]
    assert str(errors[0]) == ("code: document 1 (OverridePolicy/o): spec.allowedProfiles[0]: "
                              "no Profile named 'nope' (profiles: none)")


def test_a_document_without_a_kind_or_name_is_not_labelled() -> None:
    for body in ({"kind": "Profile", "metadata": {"name": 3}}, {"kind": 1, "metadata": {}},
                 {"kind": "Profile", "metadata": "p"}, [1]):
        _, errors = compile_policies([PolicyDocument("code", 0, body)], "r")
        assert {e.document for e in errors} == {""}, body


def test_a_long_bad_value_is_cut_at_120_characters(compile_yaml) -> None:
    value = "x" * 130
    _, errors = compile_yaml(API + f"kind: Envelope\nmetadata: {{name: e}}\nspec:\n"
                             f"  resources: {{perPod: {{limits: {{cpu: {value}}}}}}}\n")
    assert errors == [
        f"p.yaml:5:38: document 1 (Envelope/e): spec.resources.perPod.limits[cpu]: bad value "
        f"'{'x' * 118}…: is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)"]
    _, errors = compile_yaml(API + f"kind: Envelope\nmetadata: {{name: e}}\nspec:\n"
                             f"  resources: {{perPod: {{limits: {{cpu: {'x' * 118}}}}}}}\n")
    assert f"bad value '{'x' * 118}': is not" in errors[0]
    _, errors = compile_yaml(API + f"kind: Envelope\nmetadata: {{name: e}}\nspec:\n"
                             f"  resources: {{perPod: {{limits: {{cpu: {'x' * 119}}}}}}}\n")
    assert f"bad value '{'x' * 118}…: is not" in errors[0]


def test_a_quantity_of_the_wrong_type_is_an_error_not_a_crash() -> None:
    errors: list[PolicyError] = []
    doc = PolicyDocument("code", 0, {"kind": "Envelope", "metadata": {"name": "e"}})
    assert Context(errors).quantity(doc, "spec.x", [1]) is None
    assert Context(errors).quantity(doc, "spec.b", True) is None
    assert Context(errors).quantity(doc, "spec.z", "2") == 2
    assert [str(e) for e in errors] == [
        "code: document 1 (Envelope/e): spec.x: bad value '[1]': is not a Kubernetes quantity "
        "(e.g. 500m, 2, 4Gi)",
        "code: document 1 (Envelope/e): spec.b: bad value 'True': is not a Kubernetes quantity "
        "(e.g. 500m, 2, 4Gi)"]
