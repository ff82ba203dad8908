"""What a DAG author reads when the webhook denies a task's pod at run time, with real Airflow
2.10.5 and 3.3.2 against the real kube-apiserver, as the chart's ServiceAccounts: without the
pre-check, the kubernetes client's exception (status line, HTTP headers, the JSON body with the
reason escaped inside it); with `webhook.airflow_policy.pod_mutation_hook`, the webhook's
reason itself, before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import E2EEnvironment
from tests.e2e.real_airflow import Identities, RealAirflow, snippet
from tests.e2e.scenarios import e2e_policies
from tests.support.airflow_dags import HOOK_LINE, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]
PRIVILEGED = ("spec.containers[base].securityContext.privileged must be unset or false, got "
              "true (baseline: privileged)")


def hook_env(tmp_path: Path) -> dict[str, str]:
    """airflow_local_settings.py with the pre-check, the repo on the path, the served policies."""
    settings = tmp_path / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "airflow_local_settings.py").write_text(HOOK_LINE)
    return {"PYTHONPATH": f"{ROOT}:{settings}",
            "AIRFLOW_POD_WEBHOOK_POLICIES": str(e2e_policies(tmp_path / "policies"))}


@pytest.mark.parametrize("kind", ["kpo", "executor"])
def test_the_task_fails_with_the_webhooks_reason(e2e: E2EEnvironment, real_airflow: RealAirflow,
                                                 airflow_namespace: str, tmp_path: Path,
                                                 kind: str) -> None:
    identities = Identities.issue(e2e.kubeconfig, e2e.api_client(), airflow_namespace, tmp_path)
    account = identities.worker if kind == "kpo" else identities.scheduler
    args = {"kind": kind, "namespace": airflow_namespace}
    plain = real_airflow.run(snippet("denied_launch"), kubeconfig=account,
                             namespace=airflow_namespace, args=args).check().lines()
    checked = real_airflow.run(snippet("denied_launch"), kubeconfig=account,
                               namespace=airflow_namespace, args=args,
                               env=hook_env(tmp_path)).check().lines()
    print(f"\n{real_airflow.version} {kind} without the pre-check: {plain}"
          f"\n{real_airflow.version} {kind} with pod_mutation_hook: {checked}")
    [without] = plain
    [with_hook] = checked
    # Without it: the client's dump, the reason inside escaped JSON after the HTTP headers.
    assert without["type"] in ("ApiException", "ForbiddenException"), without
    assert "HTTP response headers" in without["text"]
    assert f'violates 1 rule(s): {PRIVILEGED}","reason":"Forbidden","code":403}}' in (
        without["text"])
    # With it: the webhook's own words, nothing sent.
    reason = with_hook["text"] if kind == "kpo" else with_hook["cause"]
    assert with_hook["type"] == ("PodDenied" if kind == "kpo" else "PodMutationHookException")
    assert reason.startswith("airflow-pod-webhook denies this pod (validating hook): pod ")
    assert reason.endswith(f"violates 1 rule(s): {PRIVILEGED}")
    if kind == "executor":
        # The executor logs the cause (`Pod Mutation Hook failed ... Details: <reason>`) and
        # fails the task with the wrapper, whose own text is empty: the task instance's
        # "state mismatch" event carries no reason. task_policy is where executor DAG authors
        # see it, at parse time.
        assert with_hook["text"] == ""
