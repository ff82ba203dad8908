"""First slice: the evaluator runs and reports by field."""

from webhook.validation.podsecurity import check_ids, evaluate_pod


def test_restricted_reports_unset_allow_privilege_escalation() -> None:
    pod = {"spec": {"containers": [{"name": "base"}]}}
    messages = [v.message for v in evaluate_pod(pod, "restricted")]
    assert (
        "spec.containers[base].securityContext.allowPrivilegeEscalation must be false, "
        "got <unset> (restricted: allowPrivilegeEscalation)"
    ) in messages


def test_restricted_includes_baseline() -> None:
    assert "privileged" in check_ids("restricted")
