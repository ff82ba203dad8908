"""The Airflow cluster policy: a DAG whose task's pod the webhook would deny fails to import,
with the webhook's own rule and message, in real Airflow 2.10.5 and 3.3.2
(tests/support/airflow_dags.py parses tests/fixtures/airflow-dags with each); and the pure part,
told offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.airflow_dags import VERSIONS, parse
from tests.support.paths import ROOT
from tests.support.pods import airflow_pod
from webhook import airflow_policy
from webhook.airflow_policy import TaskPod, judge, violation_text
from webhook.decide import Decision, PodRequest, decide
from webhook.violations import Violation, violation

PRIVILEGED = ("spec.containers[base].securityContext.privileged must be unset or false, got "
              "true (baseline: privileged)")
UNKNOWN_PROFILE = ("annotation airflow-pod-webhook.io/profiles: unknown profile 'gpu-xxl' "
                   "(known: gpu, highmem, small, spot) (profiles)")
TOO_MUCH_MEMORY = ('spec.containers[base].resources.limits.memory must be at most 64Gi '
                   '(Envelope/airflow perContainer), got "128Gi" (envelope: resources)')
# file: (what the import error starts with, a webhook message it must contain)
DENIED = {
    "privileged_dag.py": (
        "AirflowClusterPolicyViolation: airflow-pod-webhook would deny this task's executor "
        "pod (validating hook): pod privileged-dag-work (dag_id=privileged_dag, task_id=work) "
        "violates 1 rule(s): ", PRIVILEGED),
    "unknown_profile_dag.py": (
        "AirflowClusterPolicyViolation: airflow-pod-webhook would deny this task's executor "
        "pod (mutating hook): pod unknown-profile-dag-work (dag_id=unknown_profile_dag, "
        "task_id=work): 1 override refusal(s): ", UNKNOWN_PROFILE),
    "too_much_memory_dag.py": (
        "AirflowClusterPolicyViolation: airflow-pod-webhook would deny this task's executor "
        "pod (validating hook): pod too-much-memory-dag-work (dag_id=too_much_memory_dag, "
        "task_id=work) violates 1 rule(s): ", TOO_MUCH_MEMORY),
    "kpo_privileged_dag.py": (
        "AirflowClusterPolicyViolation: airflow-pod-webhook would deny this task's kpo pod "
        "(validating hook): pod score-", PRIVILEGED),
}
CLEAN = ("compliant_dag.work", "kpo_compliant_dag.score")


@pytest.fixture(scope="module", params=VERSIONS)
def parsed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[str, dict, dict]:
    """(version, parsed with the policy, parsed without it) for one Airflow version."""
    version = request.param
    home = tmp_path_factory.mktemp(f"airflow-{version}")
    return (version, parse(version, home / "with", policy=True),
            parse(version, home / "without", policy=False))


@pytest.mark.airflow
def test_each_denied_task_is_a_dag_import_error_with_the_webhooks_message(parsed) -> None:
    _version, with_policy, _ = parsed
    assert sorted(with_policy["errors"]) == sorted(DENIED)
    for file, (lead, message) in DENIED.items():
        text = with_policy["errors"][file]
        assert text.startswith(lead), text
        assert message in text, text


@pytest.mark.airflow
def test_compliant_dags_parse_clean(parsed) -> None:
    _version, with_policy, _ = parsed
    assert sorted(with_policy["pods"]) == sorted(CLEAN)


@pytest.mark.airflow
def test_without_the_policy_the_same_pods_get_the_same_message_from_the_webhook(
        parsed, bundled) -> None:
    # The pods real Airflow builds for every task, judged by the hooks' own core: what the
    # import error says is what the API server would have said when the task started.
    _version, with_policy, without = parsed
    assert without["errors"] == {}
    for key, pod in without["pods"].items():
        decision = decide(PodRequest(pod, pod["metadata"]["namespace"]), bundled)
        file = f"{key.split('.')[0]}.py"
        if file in DENIED:
            assert decision.verdict == "deny"
            assert DENIED[file][1] in decision.message
            # The same text, but for the random suffix of a KPO pod's name.
            reasons = (decision.message.partition(" rule(s): ")[2]
                       or decision.message.partition(" refusal(s): ")[2])
            assert reasons and reasons in with_policy["errors"][file]
        else:
            assert decision.verdict == "allow", decision.message


# --- offline: the message, templated values, the folder ---------------------------------------


def executor_task_pod() -> TaskPod:
    return TaskPod(airflow_pod("airflow3-executor"), "airflow", "executor")


def test_an_admitted_pod_raises_nothing(bundled) -> None:
    decision, text = judge(executor_task_pod(), bundled)
    assert (decision.verdict, text) == ("allow", None)


def test_a_refused_override_names_the_mutating_hook(bundled) -> None:
    task_pod = executor_task_pod()
    task_pod.pod["metadata"]["annotations"]["airflow-pod-webhook.io/profiles"] = "gpu-xxl"
    _, text = judge(task_pod, bundled)
    assert text == ("airflow-pod-webhook would deny this task's executor pod (mutating hook): "
                    "pod example-dag-extract-x1y2z3w4 (dag_id=example_dag, task_id=extract): "
                    f"1 override refusal(s): {UNKNOWN_PROFILE}")


def test_a_value_still_templated_is_left_to_the_webhook_at_run_time() -> None:
    templated = violation("spec.priorityClassName", "must be one of airflow-*",
                          "{{ params.priority }}", "envelope: priorityClassNames")
    plain = violation("spec.hostPID", "must be unset or false", True, "baseline: hostNamespaces")
    task_pod = executor_task_pod()

    def denied(*found: Violation) -> Decision:
        return Decision(None, "deny", task_pod.pod, violations={"enforce": found},
                        message="pod p violates ...")

    # Only known when the task runs: the webhook judges the rendered value then.
    assert violation_text(task_pod, denied(templated)) is None
    # A plain violation beside it is a violation whatever the template renders to.
    assert violation_text(task_pod, denied(templated, plain)) == (
        "airflow-pod-webhook would deny this task's executor pod (validating hook): "
        "pod p violates ...")


def test_a_missing_policy_folder_checks_nothing(monkeypatch, tmp_path: Path, caplog) -> None:
    monkeypatch.setenv(airflow_policy.POLICIES_ENV, str(tmp_path / "nowhere"))
    monkeypatch.setattr(airflow_policy, "_FOLDER", airflow_policy._Folder())
    assert airflow_policy._policies() is None
    assert "does not load, tasks are not checked at parse time" in caplog.text


def test_the_default_folder_is_where_deploy_mounts_the_policies() -> None:
    deployment = ROOT / "deploy" / "base" / "deployment.yaml"
    assert f"mountPath: {airflow_policy.DEFAULT_POLICIES}" in deployment.read_text()


# --- at run time: pod_mutation_hook judges the final pod -----------------------------------------


@pytest.mark.airflow
@pytest.mark.parametrize("version", VERSIONS)
def test_pod_mutation_hook_fails_the_task_with_the_webhooks_reason(
        version: str, tmp_path: Path) -> None:
    from tests.support.airflow_dags import BUILD_AT_RUN_TIME, HOOK_LINE, pod_template

    template = pod_template(tmp_path)
    got = parse(version, tmp_path / "home", policy=HOOK_LINE, script=BUILD_AT_RUN_TIME,
                args=(str(template),))
    assert got["errors"] == {}  # without task_policy every DAG parses
    pods = got["pods"]
    assert (pods["compliant_dag"], pods["kpo_compliant_dag"]) == ("built", "built")
    # The executor wraps what the hook raises; its log line shows the cause, our reason.
    assert pods["privileged_dag"] == (
        "PodMutationHookException() from PodDenied: airflow-pod-webhook denies this pod "
        "(validating hook): pod privileged-dag (dag_id=privileged_dag, task_id=work) violates "
        f"1 rule(s): {PRIVILEGED}")
    assert pods["unknown_profile_dag"].endswith(f"1 override refusal(s): {UNKNOWN_PROFILE}")
    # A KPO task builds its pod in the worker: the task log ends with the reason itself.
    assert pods["kpo_privileged_dag"].startswith(
        "PodDenied(airflow-pod-webhook denies this pod (validating hook): pod score-")
    assert pods["kpo_privileged_dag"].endswith(f"violates 1 rule(s): {PRIVILEGED})")
