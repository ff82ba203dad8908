"""ValidationPolicy: the Pod Security level and Airflow rules the validating hook applies."""

from __future__ import annotations

from webhook.policy.model import Match, Source, ValidationPolicy

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def validation(spec: str, name: str = "v") -> str:
    return API + f"kind: ValidationPolicy\nmetadata: {{name: {name}}}\nspec:\n{spec}"


def test_a_validation_policy_compiles_with_its_level_version_and_rules(compiled) -> None:
    policy = compiled(validation(
        "  mode: warn\n  match: {namespaces: [team]}\n"
        "  podSecurity: {level: restricted, version: v1.30}\n"
        "  rules:\n    resources: {maxRequests: {cpu: '8'}, requireLimits: [memory]}\n"))
    found = policy.validation_policies[0]
    assert found == ValidationPolicy(
        "v", Match(namespaces=("team",)), "warn", "restricted", "v1.30",
        found.rules, Source("p.yaml", 0))
    assert {k: dict(v) for k, v in found.rules.items()} == {
        "resources": {"maxRequests": {"cpu": "8"}, "requireLimits": ["memory"]}}


def test_defaults_enforce_the_latest_version_of_no_level(compiled) -> None:
    policy = compiled(validation("  podSecurity: {level: baseline}\n", "b") + "---\n"
                      + validation("  mode: audit\n", "a"))
    assert [v.name for v in policy.validation_policies] == ["a", "b"]
    bare, level = policy.validation_policies
    assert (bare.mode, bare.pod_security_level, bare.pod_security_version) == (
        "audit", None, "latest")
    assert dict(bare.rules) == {}
    assert (level.mode, level.pod_security_level, level.pod_security_version) == (
        "enforce", "baseline", "latest")


def test_resource_maxima_must_be_quantities(compile_yaml) -> None:
    _, errors = compile_yaml(validation(
        "  rules:\n    resources:\n      maxRequests: {cpu: lots, memory: 1Gi}\n"
        "      maxLimits: {memory: much}\n"))
    assert errors == [
        "p.yaml:7:26: document 1 (ValidationPolicy/v): spec.rules.resources.maxRequests.cpu: "
        "bad value 'lots': is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)",
        "p.yaml:8:27: document 1 (ValidationPolicy/v): spec.rules.resources.maxLimits.memory: "
        "bad value 'much': is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)"]


def test_the_match_is_checked(compile_yaml) -> None:
    _, errors = compile_yaml(validation("  match: {podTypes: [other]}\n"))
    assert errors == [
        "p.yaml:5:3: document 1 (ValidationPolicy/v): spec.match.labelSelector: podTypes "
        "'other' needs a labelSelector: foreign pods are never matched by namespace alone"]
