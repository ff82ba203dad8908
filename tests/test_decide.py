"""The one decision core: what every edge (hooks, CLI, audit, policy test, the Airflow cluster
policy) gets for a pod, told as the DAG author's stories."""

from __future__ import annotations

import copy

import jsonpatch
import pytest

from tests.support.pods import admitted_pod, airflow_pod
from webhook.decide import BOTH, MUTATE, VALIDATE, PodRequest, decide

NS = "airflow"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
P = "airflow-pod-webhook.io/"


def test_a_compliant_executor_pod_is_mutated_then_allowed(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    decision = decide(PodRequest(pod, NS, SCHEDULER), bundled)
    assert (decision.verdict, decision.refusals, decision.message) == ("allow", (), "")
    assert decision.pod == jsonpatch.apply_patch(pod, decision.patch)
    assert "PodTemplate/airflow-defaults" in decision.applied
    assert decision.validation is not None and decision.validation.allowed
    assert decision.pod["spec"]["securityContext"]["seccompProfile"] == {
        "type": "RuntimeDefault"}


def test_a_refused_override_ends_the_decision_before_validation(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][P + "memory"] = "128Gi"
    decision = decide(PodRequest(pod, NS, SCHEDULER), bundled)
    assert (decision.verdict, decision.code, decision.validation, decision.patch) == (
        "deny", 403, None, [])
    assert decision.message.startswith("pod ")
    assert ": 2 override refusal(s): annotation airflow-pod-webhook.io/memory: " in (
        decision.message)
    assert decision.message.endswith("(envelope: resources)")
    assert decision.rules == ("envelope: resources",)


def test_the_validating_stage_alone_judges_the_pod_as_it_came(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    decision = decide(PodRequest(pod, NS, SCHEDULER), bundled, VALIDATE)
    assert decision.verdict == "deny" and decision.patch == [] and decision.mutation is None
    assert "baseline: privileged" in decision.message


def test_the_mutating_stage_alone_does_not_validate(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    decision = decide(PodRequest(pod, NS, SCHEDULER), bundled, MUTATE)
    assert (decision.verdict, decision.validation) == ("allow", None)
    assert decision.patch


def test_a_later_write_is_judged_and_nothing_else_but_a_create(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    unchanged = PodRequest(pod, NS, SCHEDULER, operation="UPDATE", old_pod=pod)
    assert (decide(unchanged, bundled).verdict, decide(unchanged, bundled).write) == (
        "allow", True)
    # The mutating hook never acts on a live pod: defaults are for a new one.
    assert decide(unchanged, bundled, MUTATE).verdict == "skip"
    admitted = admitted_pod("airflow3-executor")  # a pod as the hooks left it: nothing standing
    tolerant = copy.deepcopy(admitted)
    tolerant["spec"]["tolerations"] = [{"operator": "Exists"}]
    added = decide(PodRequest(tolerant, NS, SCHEDULER, operation="UPDATE", old_pod=admitted),
                   bundled)
    assert (added.verdict, added.rules) == ("deny", ("envelope: placement",))
    for request in (PodRequest(pod, NS, SCHEDULER, operation="DELETE"),
                    PodRequest(pod, NS, SCHEDULER, subresource="ephemeralcontainers")):
        assert decide(request, bundled).verdict == "skip"


def test_a_foreign_pod_a_person_creates_is_skipped(bundled) -> None:
    pod = {"metadata": {"name": "web", "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
    decision = decide(PodRequest(pod, NS, "alice@example.com"), bundled, BOTH)
    assert (decision.verdict, decision.patch, decision.would_deny) == ("skip", [], False)


def test_a_warn_mode_violation_is_allowed_but_would_be_denied_if_enforced(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["containers"][0]["image"] = "apache/airflow:latest"
    decision = decide(PodRequest(pod, NS, SCHEDULER), bundled)
    assert decision.verdict == "allow" and decision.would_deny
    assert [v.rule for v in decision.violations["warn"]] == ["airflow: images"]
    assert any("airflow: images" in w for w in decision.warnings)


def test_a_pod_changed_in_place_after_a_verdict_gets_a_fresh_one(bundled) -> None:
    # Pod Security used to keep the last spec's containers by object identity: a container
    # added in place to a pod judged before was never looked at.
    pod = copy.deepcopy(decide(PodRequest(airflow_pod("airflow3-executor"), NS, SCHEDULER),
                               bundled).pod)  # as the validating hook sees it
    first = decide(PodRequest(pod, NS, SCHEDULER), bundled, VALIDATE)
    assert first.verdict == "allow"
    sidecar = copy.deepcopy(pod["spec"]["containers"][0])
    sidecar.update(name="sidecar", securityContext={"privileged": True})
    pod["spec"]["containers"].append(sidecar)
    second = decide(PodRequest(pod, NS, SCHEDULER), bundled, VALIDATE)
    assert second.verdict == "deny"
    assert "spec.containers[sidecar].securityContext.privileged" in second.message


@pytest.mark.parametrize("stages", [MUTATE, VALIDATE, BOTH])
def test_a_pod_past_a_cap_is_refused_before_any_work_in_every_stage(bundled, stages) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["tolerations"] = [{"key": f"k{i}"} for i in range(501)]
    decision = decide(PodRequest(pod, NS, SCHEDULER), bundled, stages)
    assert (decision.verdict, decision.code, decision.rules, decision.would_deny) == (
        "deny", 400, ("webhook: limits",), True)
    assert decision.mutation is None and decision.validation is None
    assert decision.message.endswith(
        "too large to review: spec.tolerations: 501 items, more than the cap of 500 "
        "(Settings limits.tolerations) (webhook: limits)")


def test_a_pod_security_level_alone_sets_the_policies_aside(bundled) -> None:
    # `validate --level`: the answer of the cluster's own pod-security admission at one level,
    # on any pod, labels or not; no mutation, no Envelope, no policy.
    kpo = airflow_pod("airflow3-kpo")
    restricted = decide(PodRequest(kpo, NS), bundled, VALIDATE, level="restricted")
    assert (restricted.verdict, restricted.code, restricted.rules) == ("deny", 403, (
        "restricted: allowPrivilegeEscalation", "restricted: capabilities_restricted",
        "restricted: runAsNonRoot", "restricted: seccompProfile_restricted"))
    assert restricted.mutation is None and restricted.pod is kpo
    baseline = decide(PodRequest(kpo, NS), bundled, VALIDATE, level="baseline")
    assert (baseline.verdict, baseline.message) == ("allow", "")
    assert baseline.validation is not None
    assert baseline.validation.audit_annotations["level"] == "baseline:latest"
    # The policies would judge the same pod otherwise (the locks a raw pod lacks).
    assert "(envelope: lockedFields)" in decide(PodRequest(kpo, NS), bundled, VALIDATE).message
    foreign = copy.deepcopy(kpo)
    foreign["metadata"]["labels"] = {"app": "web"}
    foreign["spec"]["hostPID"] = True
    assert decide(PodRequest(foreign, NS), bundled, VALIDATE).verdict == "skip"
    judged = decide(PodRequest(foreign, NS), bundled, VALIDATE, level="baseline")
    assert (judged.verdict, judged.rules) == ("deny", ("baseline: hostNamespaces",))
    with pytest.raises(ValueError, match="invalid policy version 'v2'"):
        decide(PodRequest(kpo, NS), bundled, VALIDATE, level="baseline", level_version="v2")
