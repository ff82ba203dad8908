"""The validating hook's decision, told through what happens to a DAG author's pod."""

from __future__ import annotations

import copy
import json
import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.oracles import internal_errors
from tests.support.paths import AIRFLOW_PODS
from webhook.mutation.mutate import mutate_pod
from webhook.policy.compile import PolicyDocument, compile_policies
from webhook.policy.schema import API_VERSION
from webhook.validation.validate import (
    DENY_CODE,
    ValidationResult,
    exemption_covers,
    validate_pod,
)

FIXTURES = AIRFLOW_PODS  # copies of ../shared/fixtures/airflow-pods
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
NS = "data-airflow"
AUDIT_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def doc(kind: str, name: str, spec: dict) -> dict:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def policy_set(*bodies: dict, revision: str = "r1"):
    documents = [PolicyDocument("test.yaml", i, b) for i, b in enumerate(bodies)]
    policies, errors = compile_policies(documents, revision)
    assert not errors, [str(e) for e in errors]
    return policies


def enforce(level: str, **extra) -> dict:
    return doc("ValidationPolicy", f"{level}-enforce",
               {"mode": "enforce", "podSecurity": {"level": level}, **extra})


def privileged(pod: dict) -> dict:
    pod = copy.deepcopy(pod)
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    return pod


def assert_admission_limits(result: ValidationResult) -> None:
    assert len(result.message) <= 4096
    assert all(len(w) <= 256 for w in result.warnings)
    assert sum(len(w) for w in result.warnings) <= 4096
    assert len(set(result.warnings)) == len(result.warnings)
    assert not any(re.search(r"[\x00-\x1f\x7f]", w) for w in result.warnings)
    assert all(AUDIT_KEY.match(k) and len(k) <= 63 for k in result.audit_annotations)
    assert all(isinstance(v, str) for v in result.audit_annotations.values())


# ---- the stock Airflow worker pod: runAsUser 50000, fsGroup 0


def test_stock_worker_pod_passes_baseline():
    result = validate_pod(load("airflow2-executor.json"), policy_set(), level="baseline")
    assert result.allowed and result.code == 200 and result.message == ""
    assert result.violations["enforce"] == ()


def test_stock_worker_pod_fails_restricted_but_not_for_its_uid():
    result = validate_pod(load("airflow2-executor.json"), policy_set(), level="restricted")
    assert not result.allowed and result.code == DENY_CODE
    # uid 50000 is not root and fsGroup 0 is no PSS concern: only the unset fields count.
    assert result.rules_violated == (
        "restricted: allowPrivilegeEscalation",
        "restricted: capabilities_restricted",
        "restricted: runAsNonRoot",
        "restricted: seccompProfile_restricted",
    )


@pytest.mark.parametrize("name", ["airflow2-executor.json", "airflow3-executor.json",
                                  "airflow2-executor-pod-override.json",
                                  "airflow3-executor-pod-override.json"])
def test_bundled_policies_make_executor_pods_restricted_clean(bundled, name):
    mutated = mutate_pod(load(name), bundled, NS, SCHEDULER).pod
    result = validate_pod(mutated, bundled, NS, SCHEDULER)
    assert result.allowed
    assert not [r for r in result.rules_violated if r.startswith(("baseline", "restricted"))]
    assert validate_pod(mutated, bundled, level="restricted").allowed


# ---- a privileged pod_override


def test_privileged_override_is_denied_with_the_exact_message(bundled):
    pod = privileged(load("airflow2-executor-pod-override.json"))
    mutated = mutate_pod(pod, bundled, NS, SCHEDULER).pod
    result = validate_pod(mutated, bundled, NS, SCHEDULER)
    assert not result.allowed and result.code == 403
    assert result.message == (
        "pod example-dag-extract-x1y2z3w4 (dag_id=example_dag, task_id=extract) violates "
        "1 rule(s): spec.containers[base].securityContext.privileged must be unset or false, "
        "got true (baseline: privileged)"
    )
    # The same check also found by the warn policy is reported once, as the denial.
    assert "baseline: privileged" not in " ".join(result.warnings)
    assert result.audit_annotations["decision"] == "deny"
    assert result.audit_annotations["mode"] == "enforce"


def test_host_network_and_host_path_are_denied(bundled):
    pod = load("airflow3-executor.json")
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run"}})
    result = validate_pod(mutate_pod(pod, bundled, NS, SCHEDULER).pod, bundled, NS, SCHEDULER)
    assert not result.allowed
    assert [v.rule for v in result.violations["enforce"]] == [
        "baseline: hostNamespaces", "baseline: hostPathVolumes"]
    assert "violates 2 rule(s): " in result.message


# ---- modes


def test_warn_and_audit_modes_are_visible_and_allow():
    policies = policy_set(
        doc("ValidationPolicy", "images-warn",
            {"mode": "warn", "rules": {"images": {"forbidLatestTag": True}}}),
        doc("ValidationPolicy", "sa-audit",
            {"mode": "audit", "rules": {"serviceAccounts": {"allowed": ["etl"]}}}),
    )
    pod = load("airflow3-executor.json")
    pod["spec"]["containers"][0]["image"] = "apache/airflow:latest"
    result = validate_pod(pod, policies, NS)
    assert result.allowed and result.message == ""
    assert result.policies == ("images-warn", "sa-audit")
    assert result.warnings == (
        'spec.containers[base].image must be pinned to a version tag or a digest, not :latest, '
        'got "apache/airflow:latest" (airflow: images)',
    )
    assert result.audit_annotations["violations"] == (
        'spec.serviceAccountName must be one of etl, got "airflow-worker" '
        "(airflow: serviceAccounts)")
    assert result.audit_annotations["mode"] == "warn"
    assert result.audit_annotations["policy-revision"] == "r1"
    assert [v.rule for v in result.violations["audit"]] == ["airflow: serviceAccounts"]
    assert result.rules_violated == ("airflow: images", "airflow: serviceAccounts")


def test_a_violation_found_twice_is_reported_in_its_strongest_mode():
    policies = policy_set(
        doc("ValidationPolicy", "a-restricted-audit",
            {"mode": "audit", "podSecurity": {"level": "restricted"}}),
        doc("ValidationPolicy", "b-restricted-warn",
            {"mode": "warn", "podSecurity": {"level": "restricted"}}),
    )
    result = validate_pod(load("airflow3-executor.json"), policies, NS)
    assert result.violations["audit"] == ()
    assert len(result.violations["warn"]) == 4 == len(result.warnings)


def test_policies_scoped_to_a_namespace():
    policies = policy_set(
        doc("ValidationPolicy", "prod", {"match": {"namespaces": ["prod-*"]}, "mode": "enforce",
                                         "podSecurity": {"level": "restricted"}}))
    pod = load("airflow3-executor.json")
    assert validate_pod(pod, policies, "data-airflow").allowed
    assert not validate_pod(pod, policies, "prod-airflow").allowed


# ---- exemptions


def exemption(name: str, rules: list[str], expires: str | None = None, **match) -> dict:
    spec = {"match": match or {"dagIds": ["example_dag"]}, "rules": rules,
            "reason": "legacy image needs root until Q3"}
    if expires:
        spec["expires"] = expires
    return doc("Exemption", name, spec)


def test_an_exemption_is_honoured_and_recorded():
    policies = policy_set(enforce("restricted"),
                          exemption("legacy-root", ["restricted: runAsNonRoot"], "2026-12-31"))
    result = validate_pod(load("airflow3-executor.json"), policies, NS, today=date(2026, 11, 20))
    assert "restricted: runAsNonRoot" not in result.rules_violated
    assert not result.allowed  # the other restricted checks still deny
    assert result.exempted == ("legacy-root",)
    notice = ("exempted by legacy-root (legacy image needs root until Q3; expires 2026-12-31): "
              "restricted: runAsNonRoot")
    assert notice in result.warnings
    assert result.audit_annotations["exempted"] == notice
    assert [(v.rule, name) for v, name in result.waived] == [
        ("restricted: runAsNonRoot", "legacy-root")]


def test_a_whole_level_exemption_lets_the_pod_run_at_baseline():
    policies = policy_set(enforce("restricted"), exemption("legacy", ["restricted"]))
    assert validate_pod(load("airflow3-executor.json"), policies, NS).allowed
    denied = validate_pod(privileged(load("airflow3-executor.json")), policies, NS)
    assert denied.rules_violated == ("baseline: privileged",)


def test_an_expired_exemption_is_ignored():
    policies = policy_set(enforce("restricted"), exemption("old", ["*"], "2026-01-31"))
    pod = load("airflow3-executor.json")
    assert validate_pod(pod, policies, NS, today=date(2026, 1, 31)).allowed  # its last day
    result = validate_pod(pod, policies, NS, today=date(2026, 2, 1))
    assert not result.allowed and result.exempted == ()
    assert not any("exempted" in w for w in result.warnings)


def test_an_exemption_for_another_task_does_nothing():
    policies = policy_set(enforce("restricted"),
                          exemption("other", ["*"], dagIds=["example_dag"], taskIds=["load"]))
    assert not validate_pod(load("airflow3-executor.json"), policies, NS).allowed


@pytest.mark.parametrize(("entry", "rule", "covered"), [
    ("*", "restricted: runAsNonRoot", True),
    ("*", "airflow: images", True),
    ("restricted", "restricted: runAsNonRoot", True),
    ("restricted", "baseline: privileged", False),
    ("baseline", "baseline: privileged", True),
    ("airflow", "airflow: images", True),
    ("airflow", "restricted: runAsNonRoot", False),
    ("restricted: runAsNonRoot", "restricted: runAsNonRoot", True),
    ("restricted:runAsNonRoot", "restricted: runAsNonRoot", True),
    ("restricted: runAsNonRoot", "restricted: runAsUser", False),
    ("restricted: runasnonroot", "restricted: runAsNonRoot", False),
    ("airflow: *", "airflow: resources", True),
    ("restricted: capabilities_*", "restricted: capabilities_restricted", True),
    ("*", "identity: trustedCreators", False),
    ("identity", "identity: trustedCreators", False),
])
def test_exemption_rule_matching(entry, rule, covered):
    assert exemption_covers(entry, rule) is covered


# ---- labels are not identity


def identity(untrusted: str = "warn") -> dict:
    return doc("Settings", "settings", {"identity": {
        "untrusted": untrusted,
        "trustedCreators": [{"namespaces": [NS], "usernames": [SCHEDULER]}]}})


def test_an_untrusted_creator_is_warned_by_default():
    policies = policy_set(identity())
    result = validate_pod(load("airflow3-executor.json"), policies, NS, "alice")
    assert result.allowed and result.creator_trusted is False
    assert result.warnings == (
        "request.userInfo.username must be a trusted creator of Airflow pods in namespace "
        "data-airflow (Settings identity.trustedCreators) to create a pod labelled as an "
        'Airflow executor pod, got "alice" (identity: trustedCreators)',
    )
    assert result.audit_annotations["untrusted-creator"] == "alice"


def test_an_untrusted_creator_is_denied_when_settings_say_so():
    policies = policy_set(identity("deny"))
    result = validate_pod(load("airflow3-kpo-xcom.json"), policies, NS, "alice")
    assert not result.allowed and result.code == 403
    assert "alice" in result.message and "namespace data-airflow" in result.message
    assert "Airflow kpo pod" in result.message


def test_trusted_unchecked_and_unruled_creators_pass():
    policies = policy_set(identity("deny"))
    pod = load("airflow3-executor.json")
    assert validate_pod(pod, policies, NS, SCHEDULER).creator_trusted is True
    assert validate_pod(pod, policies, NS, None).allowed  # the offline CLI has no user
    assert validate_pod(pod, policies, "other-ns", "alice").creator_trusted is None


def test_an_untrusted_creator_gets_no_exemptions():
    # The exemption matches on labels the untrusted creator wrote himself.
    policies = policy_set(identity(), enforce("restricted"), exemption("all", ["*"]))
    pod = load("airflow3-executor.json")
    assert validate_pod(pod, policies, NS, SCHEDULER).allowed
    result = validate_pod(pod, policies, NS, "alice")
    assert not result.allowed and result.exempted == ()


def test_a_forged_executor_pod_gets_no_template_secrets_or_labels(bundled):
    # A task holding the worker's token labels its own pod as an executor pod to get what the
    # chart's worker template gives executor pods: the metadata connection and the worker's
    # Service labels. The worker is trusted for KPO pods only: a KPO pod's allowances apply.
    pod = mutate_pod(load("airflow3-executor.json"), bundled, NS, SCHEDULER).pod
    pod["metadata"]["labels"].update(tier="airflow", component="worker", release="airflow")
    pod["spec"]["containers"][0].setdefault("env", []).append({
        "name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "valueFrom": {"secretKeyRef": {"name": "airflow-metadata", "key": "connection"}}})
    assert validate_pod(pod, bundled, NS, SCHEDULER).allowed
    result = validate_pod(pod, bundled, NS, "system:serviceaccount:airflow:airflow-worker")
    assert not result.allowed
    assert result.rules_violated == ("envelope: labels", "envelope: secrets",
                                     "identity: trustedCreators")
    assert ("spec.containers[base].env[AIRFLOW__DATABASE__SQL_ALCHEMY_CONN].valueFrom."
            "secretKeyRef.name must not name one of Airflow's own Secrets (airflow-metadata) "
            "(Envelope/airflow secrets), got \"airflow-metadata\" (envelope: secrets)"
            ) in result.message


# ---- foreign pods and the CLI's --level


def test_foreign_pods_are_not_judged():
    pod = privileged(load("airflow3-executor.json"))
    pod["metadata"]["labels"] = {"app": "web"}
    result = validate_pod(pod, policy_set(enforce("baseline")), NS, "alice")
    assert result.allowed and result.warnings == () and result.audit_annotations == {}
    assert result.policies == ()


def test_level_judges_any_pod_and_ignores_policies():
    pod = privileged(load("airflow3-executor.json"))
    pod["metadata"]["labels"] = {"app": "web"}
    result = validate_pod(pod, policy_set(), level="baseline")
    assert not result.allowed
    assert result.message == (
        "pod example-dag-extract-x1y2z3w4 violates 1 rule(s): spec.containers[base]"
        ".securityContext.privileged must be unset or false, got true (baseline: privileged)")
    exempt_all = policy_set(exemption("all", ["*"]))
    assert not validate_pod(privileged(load("airflow3-executor.json")), exempt_all,
                            level="restricted").allowed
    with pytest.raises(ValueError, match="unknown Pod Security level"):
        validate_pod(pod, policy_set(), level="privileged")


# ---- the KPO XCom sidecar


def test_xcom_sidecar_is_judged_like_any_container():
    pod = load("airflow3-kpo-xcom.json")
    result = validate_pod(pod, policy_set(enforce("restricted")), NS)
    paths = {v.path.split(".securityContext")[0] for v in result.violations["enforce"]}
    assert paths == {"spec.containers[base]", "spec.containers[airflow-xcom-sidecar]"}


def test_bundled_mutation_makes_the_xcom_sidecar_compliant(bundled):
    mutated = mutate_pod(load("airflow3-kpo-xcom.json"), bundled, NS, SCHEDULER).pod
    result = validate_pod(mutated, bundled, NS, SCHEDULER)
    assert result.allowed
    found = [v for m in result.violations.values() for v in m]
    assert found and not [v for v in found if "airflow-xcom-sidecar" in v.path]


# ---- message and warning limits


def pod_with_300_violations() -> dict:
    pod = load("airflow3-executor.json")
    base = pod["spec"]["containers"][0]
    pod["spec"]["containers"] = [
        {**base, "name": f"c{i:03d}", "securityContext": {"privileged": True}}
        for i in range(300)]
    return pod


def test_300_violations_fit_the_denial_message():
    result = validate_pod(pod_with_300_violations(), policy_set(enforce("baseline")), NS)
    assert not result.allowed and len(result.violations["enforce"]) == 300
    assert_admission_limits(result)
    assert result.message.startswith("pod example-dag-extract-x1y2z3w4 (dag_id=example_dag, "
                                     "task_id=extract) violates 1 rule(s): "
                                     "spec.containers[c000].securityContext.privileged")
    shown = result.message.count("(baseline: privileged)")
    assert result.message.endswith(f"; … and {300 - shown} more")
    assert len(result.message) > 3900  # filled, not cut short


def test_300_violations_fit_the_warnings():
    policies = policy_set(doc("ValidationPolicy", "w",
                              {"mode": "warn", "podSecurity": {"level": "baseline"}}))
    result = validate_pod(pod_with_300_violations(), policies, NS)
    assert result.allowed
    assert_admission_limits(result)
    shown = len(result.warnings) - 1
    assert result.warnings[-1] == f"… and {300 - shown} more"
    assert result.warnings[:2] == (
        "spec.containers[c000].securityContext.privileged must be unset or false, got true "
        "(baseline: privileged)",
        "spec.containers[c001].securityContext.privileged must be unset or false, got true "
        "(baseline: privileged)",
    )


def test_audit_violations_are_bounded_too():
    policies = policy_set(doc("ValidationPolicy", "a",
                              {"mode": "audit", "podSecurity": {"level": "baseline"}}))
    result = validate_pod(pod_with_300_violations(), policies, NS)
    assert len(result.audit_annotations["violations"]) <= 4096
    assert result.audit_annotations["violations"].endswith("more")


def test_hostile_text_cannot_break_headers_or_requeue_the_task():
    pod = load("airflow3-executor.json")
    pod["spec"]["containers"][0]["name"] = "base\nX-Injected: 1"
    pod["spec"]["containers"][0]["image"] = "x" * 600 + ":latest"
    pod["spec"]["serviceAccountName"] = "exceeded quota, object has been modified, too old " \
                                        "resource version"
    policies = policy_set(
        doc("ValidationPolicy", "warn", {"mode": "warn",
                                         "rules": {"images": {"forbidLatestTag": True}}}),
        doc("ValidationPolicy", "deny", {"mode": "enforce",
                                         "rules": {"serviceAccounts": {"allowed": ["a"]}}}))
    result = validate_pod(pod, policies, NS)
    assert_admission_limits(result)
    assert result.warnings[0].endswith("…") and len(result.warnings[0]) == 256
    for words in ("exceeded quota", "object has been modified", "too old resource version"):
        assert words not in result.message.lower()
    assert '"exceeded-quota, object-has been modified, too-old resource version"' in \
        result.message


# ---- malformed pods are judged, never crashed on


@pytest.mark.parametrize("pod", [
    {}, {"metadata": None, "spec": None}, {"spec": []}, "not a pod", None,
    {"metadata": {"labels": {"kubernetes_executor": "True", "airflow-worker": "1"}},
     "spec": {"containers": "base", "securityContext": "x", "volumes": [None, 3]}},
])
def test_malformed_pods(pod):
    result = validate_pod(pod, policy_set(enforce("restricted")), NS, "alice")
    assert isinstance(result, ValidationResult)
    # A crash inside would be turned into a violation: none may be one.
    assert internal_errors(v for found in result.violations.values() for v in found) == []
    assert "webhook: internal" not in result.rules_violated


def test_an_executor_pod_with_no_spec_is_judged_as_defaulted():
    pod = load("airflow3-executor.json")
    pod["spec"] = None
    policies = policy_set(doc("ValidationPolicy", "r", {
        "mode": "enforce", "podSecurity": {"level": "restricted"},
        "rules": {"serviceAccounts": {"allowed": ["airflow-worker"]}}}))
    result = validate_pod(pod, policies, NS)
    # No spec: no containers to judge (as upstream PSA) and the service account is "default".
    assert result.rules_violated == ("airflow: serviceAccounts",)
    assert result.violations["enforce"][0].value == '"default"'
    assert all(v.requirement != "must be readable by the validating webhook"
               for v in result.violations["enforce"])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
SPLICE_POINTS = [
    ("metadata",), ("metadata", "labels"), ("metadata", "name"), ("spec",),
    ("spec", "containers"), ("spec", "containers", 0), ("spec", "containers", 0, "image"),
    ("spec", "containers", 0, "resources"), ("spec", "containers", 0, "securityContext"),
    ("spec", "containers", 1, "resources", "limits"), ("spec", "securityContext"),
    ("spec", "volumes"), ("spec", "volumes", 0), ("spec", "tolerations"),
    ("spec", "nodeSelector"), ("spec", "serviceAccountName"),
    ("spec", "automountServiceAccountToken"), ("spec", "initContainers"),
]
ALL_RULES = {
    "images": {"allowedRegistries": ["ghcr.io/acme"], "forbidLatestTag": True},
    "resources": {"requireRequests": ["cpu"], "requireLimits": ["memory"],
                  "maxRequests": {"cpu": "1"}, "maxLimits": {"memory": "1Gi"}},
    "serviceAccounts": {"allowed": ["default"]},
    "hostPaths": {"allowedPrefixes": ["/data"]},
    "nodeSelectors": {"allowed": {"node-pool": ["a"]}},
    "tolerations": {"allowedKeys": ["dedicated"]},
    "automountServiceAccountToken": {"allowed": False},
}
FUZZ_POLICIES = policy_set(
    identity(),
    doc("ValidationPolicy", "everything", {"mode": "enforce", "rules": ALL_RULES,
                                           "podSecurity": {"level": "restricted"}}),
    doc("ValidationPolicy", "warn-baseline", {"mode": "warn",
                                              "podSecurity": {"level": "baseline"}}),
    exemption("some", ["airflow", "restricted: runAsUser"], dagIds=["*"]),
)


def _child(node: object, key: object) -> tuple[bool, object]:
    if isinstance(node, dict) and key in node:
        return True, node[key]
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return True, node[key]
    return False, None


def splice(pod: dict, path: tuple, value: object) -> dict:
    """Put `value` at `path` when its parent exists (earlier splices may have removed it)."""
    node: object = pod
    for key in path[:-1]:
        found, node = _child(node, key)
        if not found:
            return pod
    last = path[-1]
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(last, int)
                                  and last < len(node)):
        node[last] = value
    return pod


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fixture=st.sampled_from(sorted(p.name for p in FIXTURES.glob("*.json"))),
       edits=st.lists(st.tuples(st.sampled_from(SPLICE_POINTS), JSON), min_size=1, max_size=4),
       username=st.none() | st.sampled_from([SCHEDULER, "alice"]))
def test_fuzzed_pods_always_get_a_decision(fixture, edits, username):
    pod = load(fixture)
    for path, value in edits:
        pod = splice(pod, path, value)
    result = validate_pod(pod, FUZZ_POLICIES, NS, username)
    assert isinstance(result, ValidationResult)
    assert result.allowed is (result.violations["enforce"] == ())
    assert_admission_limits(result)
    # Nothing crashed inside: a crash in validate_pod shows as the rule "webhook: internal",
    # one in a Pod Security check or an Airflow rule as a "must be readable" violation.
    assert "webhook: internal" not in result.rules_violated
    assert internal_errors(v for found in result.violations.values() for v in found) == []
