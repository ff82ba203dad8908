"""`policy test`: the admin's CI proves the policy repo; a broken expectation says exactly why."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

from tests.support.paths import POLICIES
from webhook.policy.compile import PolicyDocument, compile_policies
from webhook.policy.schema import API_VERSION
from webhook.policy_tests import CaseResult, load_cases, run_case, run_policy_tests

PODS = POLICIES / "tests" / "pods"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"


def pod(name: str) -> dict:
    return json.loads((PODS / name).read_text())


def case(name: str, pod_body: dict, expect: dict, **spec) -> dict:
    return {"apiVersion": API_VERSION, "kind": "PolicyTest", "metadata": {"name": name},
            "spec": {"namespace": "data-airflow", "username": SCHEDULER, "pod": pod_body,
                     "expect": expect, **spec}}


# ---- the bundled cases


def test_every_bundled_case_passes(bundled):
    results = run_policy_tests(POLICIES, bundled)
    failures = [m for r in results for m in r.mismatches]
    assert failures == []
    assert len(results) >= 10 and all(r.passed for r in results)
    assert {r.file for r in results} == {"denied.yaml", "envelope.yaml", "executor.yaml",
                                         "exemptions.yaml", "kpo.yaml", "overrides.yaml"}


def test_bundled_cases_cover_the_stories(bundled):
    names = {r.name for r in run_policy_tests(POLICIES / "tests", bundled)}
    assert {"executor-airflow2-gets-defaults", "executor-airflow3-restricted-clean",
            "kpo-xcom-sidecar-compliant", "privileged-pod-override-denied",
            "host-network-denied", "host-path-denied", "example-dag-extract-task-policy",
            "memory-annotation-over-bound-refused", "latest-image-warned",
            "highmem-profile-applied", "kpo-critical-priority-and-scheduler-account-denied",
            "executor-node-name-tolerate-all-mig-denied"} <= names


def test_results_name_their_file_and_position(bundled):
    results = run_policy_tests(POLICIES, bundled)
    first = next(r for r in results if r.name == "host-network-denied")
    assert (first.file, first.index) == ("denied.yaml", 1)


# ---- a broken expectation is reported precisely


def test_wrong_decision_names_the_case_expectation_and_what_happened(bundled):
    result = run_case(case("priv", pod("executor-privileged.json"),
                           {"validate": {"allowed": True}}), bundled)
    assert not result.passed
    assert result.mismatches == (
        "priv: expect.validate.allowed: expected true, got false (denied: pod "
        "example-dag-extract-x1y2z3w4 (dag_id=example_dag, task_id=extract) violates 1 rule(s): "
        "spec.containers[base].securityContext.privileged must be unset or false, got true "
        "(baseline: privileged))",
    )


def test_wrong_rules_list_what_is_extra_and_missing(bundled):
    result = run_case(case("rules", pod("executor-privileged.json"),
                           {"validate": {"rulesViolated": ["baseline: privileged",
                                                           "restricted: runAsNonRoot"]}}),
                      bundled)
    assert result.mismatches == (
        'rules: expect.validate.rulesViolated: expected ["baseline: privileged", '
        '"restricted: runAsNonRoot"], got ["baseline: privileged", '
        '"restricted: allowPrivilegeEscalation"] (unexpected: '
        '["restricted: allowPrivilegeEscalation"], missing: ["restricted: runAsNonRoot"])',
    )


def test_wrong_field_value_and_exact_message(bundled):
    result = run_case(case("fields", pod("airflow2-executor.json"), {
        "mutate": {"fields": {"spec.containers[base].resources.limits.memory": "8Gi",
                              "spec.hostNetwork": True,
                              "spec.securityContext.runAsNonRoot": None}},
        "validate": {"message": "x", "warnings": ["nope"]},
    }), bundled)
    assert result.mismatches == (
        'fields: expect.mutate.fields[spec.containers[base].resources.limits.memory]: '
        'expected "8Gi", got "4Gi"',
        "fields: expect.mutate.fields[spec.hostNetwork]: expected true, got <unset>",
        "fields: expect.mutate.fields[spec.securityContext.runAsNonRoot]: expected unset, "
        "got true at spec.securityContext.runAsNonRoot",
        'fields: expect.validate.message: expected "x", got ""',
        # the bundled templates leave this pod nothing to warn about
        'fields: expect.validate.warnings: expected one containing "nope", got []',
    )


def test_an_empty_list_means_none_at_all(bundled):
    # a plain KPO pod is warned about runAsNonRoot (policies/50-validation.yaml says why)
    result = run_case(case("quiet", pod("kpo.json"), {"validate": {"warnings": []}}), bundled)
    assert len(result.mismatches) == 1
    assert result.mismatches[0].startswith("quiet: expect.validate.warnings: expected none, got")


def test_validation_is_not_reached_when_the_mutating_hook_refuses(bundled):
    result = run_case(case("refused", pod("executor-memory-128gi.json"),
                           {"mutate": {"allowed": True}, "validate": {"allowed": True}}),
                      bundled)
    assert len(result.mismatches) == 2
    assert result.mismatches[0].startswith(
        "refused: expect.mutate.allowed: expected true, got false (refused: annotation "
        "airflow-pod-webhook.io/memory")
    assert result.mismatches[1].startswith(
        "refused: expect.validate: not reached, the mutating hook refused the pod: ")


def test_validate_runs_on_the_mutated_pod(bundled):
    # Raw, this pod fails restricted; mutated by the bundled templates it does not.
    result = run_case(case("mutated", pod("airflow3-executor.json"),
                           {"validate": {"rulesViolated": []}}), bundled)
    assert result.passed, result.mismatches


def test_a_typo_in_an_expectation_is_an_error_not_a_pass(bundled):
    result = run_case(case("typo", pod("airflow3-executor.json"),
                           {"validate": {"rulesviolated": ["baseline: privileged"]}}), bundled)
    assert not result.passed
    assert result.mismatches == (
        "typo: spec.expect.validate.rulesviolated: is not a field here (fields: allowed, "
        "message, messageContains, rulesViolated, warnings, exempted); did you mean "
        "'rulesViolated'?",)


def test_a_case_without_expectations_is_an_error(bundled):
    result = run_case(case("empty", pod("airflow3-executor.json"), {}), bundled)
    assert not result.passed and "spec.expect" in result.mismatches[0]


def test_today_makes_exemption_expiry_testable():
    documents = [
        PolicyDocument("p.yaml", 0, {"apiVersion": API_VERSION, "kind": "ValidationPolicy",
                                     "metadata": {"name": "r"},
                                     "spec": {"podSecurity": {"level": "restricted"}}}),
        PolicyDocument("p.yaml", 1, {"apiVersion": API_VERSION, "kind": "Exemption",
                                     "metadata": {"name": "legacy"},
                                     "spec": {"match": {"dagIds": ["reporting"]},
                                              "rules": ["restricted"], "reason": "migration",
                                              "expires": "2026-12-31"}}),
    ]
    policies, errors = compile_policies(documents, "t")
    assert not errors
    before = case("before", pod("airflow3-executor.json"),
                  {"validate": {"allowed": True, "exempted": ["legacy"]}},
                  today=date(2026, 12, 31))  # as YAML reads `today: 2026-12-31`
    after = copy.deepcopy(before)
    after["spec"]["today"] = "2027-01-01"
    after["metadata"]["name"] = "after"
    assert run_case(before, policies).passed
    assert run_case(after, policies).mismatches == (
        "after: expect.validate.allowed: expected true, got false (denied: pod "
        "reporting-publish-a1b2c3d4 (dag_id=reporting, task_id=publish) violates 4 rule(s): "
        "spec.containers[base].securityContext.allowPrivilegeEscalation must be false, got "
        "<unset> (restricted: allowPrivilegeEscalation); spec.containers[base]"
        '.securityContext.capabilities.drop must contain "ALL", got <unset> '
        "(restricted: capabilities_restricted); spec.containers[base].securityContext"
        ".runAsNonRoot must be true (or set spec.securityContext.runAsNonRoot=true), got "
        "<unset> (restricted: runAsNonRoot); spec.containers[base].securityContext"
        ".seccompProfile.type must be RuntimeDefault or Localhost (or set "
        "spec.securityContext.seccompProfile.type), got <unset> "
        "(restricted: seccompProfile_restricted))",
        'after: expect.validate.exempted: expected ["legacy"], got []',
    )


# ---- reading the cases


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


HEADER = f"apiVersion: {API_VERSION}\nkind: PolicyTest\n"


def test_load_cases_reads_pod_files_and_reports_bad_ones(tmp_path, bundled):
    (tmp_path / "pods").mkdir()
    (tmp_path / "pods" / "p.json").write_text((PODS / "airflow3-executor.json").read_text())
    write(tmp_path, "a.yaml", HEADER + "metadata: {name: ok}\nspec:\n  podFile: pods/p.json\n"
          "  expect: {validate: {allowed: true}}\n---\n"
          + HEADER + "metadata: {name: gone}\nspec:\n  podFile: pods/missing.json\n"
          "  expect: {validate: {allowed: true}}\n---\n"
          + HEADER + "metadata: {name: both}\nspec:\n  podFile: pods/p.json\n  pod: {}\n"
          "  expect: {validate: {allowed: true}}\n")
    write(tmp_path, "b.yaml", "spec: [unclosed\n")
    write(tmp_path, "notes.txt", "not a case")
    loaded = load_cases(tmp_path)
    assert [(f, i) for f, i, _ in loaded] == [("a.yaml", 0), ("a.yaml", 1), ("a.yaml", 2),
                                             ("b.yaml", 0)]
    assert isinstance(loaded[0][2], dict) and loaded[0][2]["spec"]["pod"]["kind"] == "Pod"
    assert loaded[1][2].startswith("gone: spec.podFile: cannot read pods/missing.json")
    assert loaded[2][2] == "both: spec: give either pod or podFile, not both"
    assert loaded[3][2].startswith("cannot read b.yaml")

    results = run_policy_tests(tmp_path, bundled)
    assert [(r.name, r.passed) for r in results] == [
        ("ok", True), ("a.yaml#1", False), ("a.yaml#2", False), ("b.yaml#0", False)]
    assert all(isinstance(r, CaseResult) and r.file for r in results)


def test_a_misspelt_field_path_in_an_expectation_is_an_error_not_an_unset_field(bundled):
    # `null` expects the field unset: a path that names nothing would pass it vacuously.
    result = run_case(case("typo-path", pod("airflow3-executor.json"), {
        "mutate": {"fields": {"spec.securityContext.seccompProfle": None}}}), bundled)
    assert result.mismatches == (
        "typo-path: expect.mutate.fields[spec.securityContext.seccompProfle]: "
        "spec.securityContext (PodSecurityContext) has no field 'seccompProfle'; did you mean "
        "'spec.securityContext.seccompProfile'? (a field path is fields joined by dots, a list "
        "item by its name in brackets (spec.containers[base]) or [*] for every item, and a map "
        "key holding dots or slashes in brackets (resources.limits[nvidia.com/gpu]); README, "
        '"Policy tests")',)


def test_a_gpu_limit_is_named_in_brackets(bundled):
    # The dots of nvidia.com would otherwise split the key.
    result = run_case(case("gpu", pod("airflow3-executor.json"), {
        "mutate": {"fields": {"spec.containers[base].resources.limits[nvidia.com/gpu]": None}}}),
        bundled)
    assert result.mismatches == ()
