"""One review, start to finish, under hostile input: caps first, and a time budget that
ends in a denial saying so, never in a fail-open by timeout."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.support.admission_reviews import pod_review
from tests.support.pods import airflow_pod
from webhook import budget
from webhook.policy.model import Limits, PolicySet
from webhook.review import (
    MUTATE,
    MUTATE_AND_VALIDATE,
    VALIDATE,
    answer,
    answer_within,
    out_of_time,
    traced,
)

OVERRIDE = "airflow-pod-webhook.io/pod-override"
HOOKS = [MUTATE, VALIDATE, MUTATE_AND_VALIDATE]


def with_limits(policies: PolicySet, **caps: int) -> PolicySet:
    return replace(policies, settings=replace(policies.settings, limits=Limits(**caps)))


def hostile_kpo_pod() -> dict:
    """The stock KPO pod with 60,000 tolerations and a 2,000-toleration override."""
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["tolerations"] = [{"key": f"k{i}", "operator": "Exists"} for i in range(60_000)]
    pod["metadata"].setdefault("annotations", {})[OVERRIDE] = json.dumps(
        {"spec": {"tolerations": [{"key": f"o{i}"} for i in range(2000)]}},
        separators=(",", ":"))
    return pod


@pytest.mark.parametrize("hook", HOOKS)
def test_a_pod_past_a_cap_is_refused_naming_the_cap(hook: str, bundled: PolicySet) -> None:
    status, body, decision = answer(hook, pod_review(hostile_kpo_pod(), uid="u-1"),
                                    bundled)
    assert status == 200
    assert body["response"] == {"uid": "u-1", "allowed": False, "status": {
        "status": "Failure", "code": 400, "reason": "BadRequest",
        "message": "pod export-csv-c9rtvisr (dag_id=ml_pipeline, task_id=export_csv): too "
                   "large to review: spec.tolerations: 60000 items, more than the cap of 500 "
                   "(Settings limits.tolerations) (webhook: limits)"}}
    assert (decision.hook, decision.decision, decision.rules, decision.extra) == (
        hook, "deny", ("webhook: limits",), {"caps": ["tolerations"]})


def test_a_write_is_bounded_like_a_create(bundled: PolicySet) -> None:
    # A task patches 60,000 tolerations onto a live pod: refused before both pods are judged.
    old = airflow_pod("airflow3-kpo")
    new = hostile_kpo_pod()
    worker = "system:serviceaccount:airflow:airflow-worker"
    _, body, decision = answer(VALIDATE, pod_review(new, uid="u-2", operation="UPDATE",
                                                    old_object=old, username=worker), bundled)
    assert body["response"]["allowed"] is False
    assert body["response"]["status"]["message"].endswith(
        "spec.tolerations: 60000 items, more than the cap of 500 (Settings limits.tolerations) "
        "(webhook: limits)")
    assert decision.rules == ("webhook: limits",)


def test_caps_come_from_settings(bundled: PolicySet) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}, {"name": "B"}]
    policies = with_limits(bundled, env=1)
    _, body, _ = answer(VALIDATE, pod_review(pod), policies)
    assert body["response"]["status"]["message"] == (
        "pod export-csv-c9rtvisr (dag_id=ml_pipeline, task_id=export_csv): too large to "
        "review: spec.containers[base].env: 2 items, more than the cap of 1 "
        "(Settings limits.env) (webhook: limits)")
    _, body, _ = answer(VALIDATE, pod_review(pod), bundled)
    assert "too large" not in json.dumps(body)  # the default caps


def test_an_override_that_takes_the_pod_past_a_cap_is_refused_by_the_mutating_hook(
        bundled: PolicySet) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["tolerations"] = [{"key": "spot", "operator": "Exists"}]
    pod["metadata"].setdefault("annotations", {})[OVERRIDE] = json.dumps({"spec": {
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "airflow"}]}})
    policies = with_limits(bundled, tolerations=3)
    _, body, decision = answer(MUTATE, pod_review(pod), policies)
    assert body["response"]["allowed"] is True
    policies = with_limits(bundled, tolerations=1)
    _, body, decision = answer(MUTATE, pod_review(pod), policies)
    assert body["response"]["status"]["message"] == (
        "pod export-csv-c9rtvisr (dag_id=ml_pipeline, task_id=export_csv): too large to "
        "review: what the overrides, profiles and policies made of it: spec.tolerations: 2 "
        "items, more than the cap of 1 (Settings limits.tolerations) (webhook: limits)")
    assert decision.rules == ("webhook: limits",)


@pytest.mark.parametrize("hook", HOOKS)
def test_out_of_time_is_a_denial_that_says_so(hook: str, bundled: PolicySet) -> None:
    review = pod_review(airflow_pod("airflow3-executor"), uid="u-2")
    status, body, decision = answer_within(hook, review, bundled, 4.0,
                                           started=-1e9)
    assert status == 200
    assert body["response"] == {"uid": "u-2", "allowed": False, "status": {
        "status": "Failure", "code": 503, "reason": "Timeout",
        "message": "airflow-pod-webhook could not finish reviewing this pod within its time "
                   "budget of 4s (kube-apiserver's timeout less a margin): pod not admitted "
                   "(webhook: time budget)"},
        "auditAnnotations": {"review-uid": "u-2"}}
    assert (decision.decision, decision.rules, decision.namespace) == (
        "deny", ("webhook: time budget",), "data-airflow")


def test_out_of_time_stops_the_work_at_its_next_check(monkeypatch: pytest.MonkeyPatch,
                                                      bundled: PolicySet) -> None:
    calls: list[float | None] = []
    original = budget.check

    def counting_check() -> None:
        calls.append(budget.remaining())
        original()

    for module in ("webhook.mutation.merge", "webhook.envelope.registry",
                   "webhook.validation.validate", "webhook.validation.airflow_rules",
                   "webhook.validation.podsecurity.registry", "webhook.mutation.overrides"):
        monkeypatch.setattr(f"{module}.budget.check", counting_check)
    review = pod_review(airflow_pod("airflow3-executor-pod-override"))
    answer_within(MUTATE_AND_VALIDATE, review, bundled, 60.0)
    assert len(calls) > 5  # the work looks at its budget all along
    calls.clear()
    _, body, _ = answer_within(MUTATE_AND_VALIDATE, review, bundled, 0.0,
                               started=-1.0)
    assert len(calls) == 1  # the first look ended it
    assert body["response"]["status"]["reason"] == "Timeout"


def test_a_review_within_its_budget_is_answered_as_without_one(bundled: PolicySet) -> None:
    review = pod_review(airflow_pod("airflow3-executor"))
    for hook in HOOKS:
        status, body, _ = answer(hook, review, bundled)
        assert answer_within(hook, review, bundled, 60.0)[:2] == (status, traced(body))


def test_every_answer_names_its_request_for_the_audit_log(bundled: PolicySet) -> None:
    review = pod_review(airflow_pod("airflow3-executor"), uid="7c1e-9", dry_run=True)
    _, body, decision = answer_within(VALIDATE, review, bundled, 60.0)
    assert body["response"]["auditAnnotations"]["review-uid"] == "7c1e-9"
    assert (decision.uid, decision.username, decision.operation, decision.dry_run) == (
        "7c1e-9", "system:serviceaccount:airflow:airflow-scheduler", "CREATE", True)
    broken = {"kind": "AdmissionReview", "request": {"uid": "b-1", "operation": 7}}
    _, _, decision = answer_within(VALIDATE, broken, bundled, 60.0)
    assert (decision.decision, decision.uid, decision.username, decision.operation,
            decision.dry_run) == ("invalid", "b-1", None, "", False)


def test_out_of_time_without_a_uid_to_answer_is_a_plain_503() -> None:
    status, body, decision = out_of_time(VALIDATE, {"kind": "AdmissionReview"}, 4.0)
    assert (status, decision.decision, decision.rules) == (503, "deny",
                                                           ("webhook: time budget",))
    assert body["error"].startswith("airflow-pod-webhook could not finish reviewing")
