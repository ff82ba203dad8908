"""Real Airflow (2.10.5 and 3.3.2, from tools/airflow_venv.py's venvs) writing to live pods through
the real kube-apiserver, as the official Helm chart's ServiceAccounts, with the webhook
registered as `manifests --url` renders it: Airflow's own writes keep working.

The executor after a scheduler restart adopts the previous scheduler's pods (relabels
`airflow-worker`), marks a finished pod `airflow_executor_done`, deletes one, revokes one
(`airflow_pod_revoked`, then delete); the KubernetesPodOperator labels the pods it checked
(`already_checked`), deletes per its on_finish_action, deletes on kill, and retires the older of
two pods with the same labels. Each write must
succeed, send what tests/fixtures/airflow-requests/ holds, and deletes and status updates must
pass while the webhook is down.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.harness import E2EEnvironment, deadline_loop
from tests.e2e.real_airflow import (
    KPO_TASKS,
    NEW_JOB,
    SCHEDULER_SA,
    WORKER_SA,
    CapturedWrites,
    Identities,
    RealAirflow,
    finish_pods,
    grant_pod_launcher,
    launch_pods,
    move_to_phases,
    request_shape,
    service_account_username,
)
from tests.e2e.scenarios import APPLIED
from tests.support.airflow_requests import load_requests

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]

WHOAMI = """
import json, os
import kubernetes

kubernetes.config.load_kube_config()  # $KUBECONFIG
review = kubernetes.client.AuthenticationV1Api().create_self_subject_review(
    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
print(json.dumps({"user": review.status.user_info.username}))
namespace = os.environ["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"]
kubernetes.client.CoreV1Api().list_namespaced_secret(namespace)
"""


def stored_pod(e2e: E2EEnvironment, namespace: str, name: str) -> dict | None:
    from kubernetes.client.exceptions import ApiException

    try:
        response = e2e.core().read_namespaced_pod(name, namespace, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return json.loads(response.data)


def test_a_snippet_runs_as_the_service_account_it_is_given(
        e2e: E2EEnvironment, real_airflow: RealAirflow, airflow_namespace: str,
        tmp_path: Path) -> None:
    """The harness's promise: Airflow's python, authenticated by the ServiceAccount's token
    (not the admin's certificate, not impersonation), with the chart's RBAC only."""
    identities = Identities.issue(e2e.kubeconfig, e2e.api_client(), airflow_namespace, tmp_path)
    run = real_airflow.run(WHOAMI, kubeconfig=identities.worker, namespace=airflow_namespace)
    assert run.lines() == [{"user": service_account_username(airflow_namespace, WORKER_SA)}]
    # The chart's pod-launcher Role grants nothing on Secrets.
    assert run.returncode == 1
    assert "(403)" in run.stderr and 'cannot list resource \\"secrets\\"' in run.stderr


def test_airflows_own_writes_to_live_pods_succeed(
        e2e: E2EEnvironment, live_writes: CapturedWrites) -> None:
    namespace, pods = live_writes.namespace, live_writes.pods
    assert [(r["method"], r["status"]) for r in live_writes.requests] == [
        ("PATCH", 200), ("PATCH", 200), ("PATCH", 200), ("PATCH", 200), ("DELETE", 200),
        ("PATCH", 200), ("DELETE", 200),
        ("PATCH", 200), ("PATCH", 200), ("DELETE", 200), ("DELETE", 200), ("DELETE", 200),
        ("PATCH", 200), ("DELETE", 200)]
    # envtest has no kubelet to finish a graceful delete: a deleted pod is stored with a
    # deletionTimestamp, or gone.
    for gone in ("executor/deleted", "executor/running", "kpo/failed", "kpo/deleted",
                 "kpo/killed", "kpo/duplicate-1"):
        pod = stored_pod(e2e, namespace, pods[gone])
        assert pod is None or pod["metadata"].get("deletionTimestamp"), gone
    done = stored_pod(e2e, namespace, pods["executor/done"])
    assert done is not None
    assert done["metadata"]["labels"]["airflow-worker"] == str(NEW_JOB)
    assert done["metadata"]["labels"]["airflow_executor_done"] == "True"
    kept = stored_pod(e2e, namespace, pods["kpo/kept"])
    assert kept is not None and kept["metadata"]["labels"]["already_checked"] == "True"
    assert "deletionTimestamp" not in kept["metadata"]
    newer = stored_pod(e2e, namespace, pods["kpo/duplicate-2"])
    assert newer is not None and "already_checked" not in newer["metadata"]["labels"]


def test_the_pods_airflow_writes_to_were_created_through_the_webhook(
        live_writes: CapturedWrites) -> None:
    """Airflow's pods were mutated at CREATE, so the writes above are to judged pods."""
    first = {}
    for request in live_writes.requests:
        first.setdefault(request["path"], request)
    assert len(first) == len(live_writes.pods) - 1  # the newer duplicate is left alone
    for path, request in first.items():
        assert APPLIED in request["old_object"]["metadata"]["annotations"], path


def validate_decisions(e2e: E2EEnvironment, namespace: str, pod: str) -> list[dict]:
    assert e2e.webhook is not None
    decisions = []
    for line in e2e.webhook.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"pod":"{pod}"' in line:
            record = json.loads(line)
            if record["hook"] == "validate" and record["namespace"] == namespace:
                decisions.append(record)
    return decisions


def test_the_webhook_judged_each_patch_and_allowed_it(
        e2e: E2EEnvironment, live_writes: CapturedWrites) -> None:
    """With UPDATE registered for Airflow's accounts, each PATCH reached the validating hook:
    per pod, one decision for its CREATE and one per PATCH, every one an allow."""
    if e2e.webhook is None:
        pytest.skip("reads the local webhook's decision log (envtest backend)")
    patches: dict[str, int] = {}
    for request in live_writes.requests:
        if request["method"] == "PATCH":
            pod = request["path"].rsplit("/", 1)[-1]
            patches[pod] = patches.get(pod, 0) + 1
    assert sum(patches.values()) == 8
    seen: dict[str, list[str]] = {}
    for _ in deadline_loop(10, 0.2):  # the workers' log lines land a moment after the answer
        seen = {pod: [d["decision"] for d in validate_decisions(e2e, live_writes.namespace, pod)]
                for pod in patches}
        if all(len(seen[pod]) >= 1 + count for pod, count in patches.items()):
            break
    assert seen == {pod: ["allow"] * (1 + count) for pod, count in patches.items()}


def test_airflow_still_sends_what_the_fixtures_hold(live_writes: CapturedWrites) -> None:
    """A provider upgrade that changes what Airflow writes fails here: recapture with
    tools/capture_airflow_requests.py, and check the webhook still allows the new writes."""
    live = [request_shape(r, live_writes.namespace, live_writes.pods)
            for r in live_writes.requests]
    stored = [doc["shape"] for doc in load_requests(live_writes.version).values()]
    assert live == stored


def test_deletes_and_status_updates_pass_while_the_webhook_is_down(
        e2e: E2EEnvironment, real_airflow: RealAirflow, fresh_namespace: str,
        tmp_path: Path) -> None:
    namespace = fresh_namespace
    grant_pod_launcher(e2e.api_client(), namespace)
    identities = Identities.issue(e2e.kubeconfig, e2e.api_client(), namespace, tmp_path)
    pods, _ = launch_pods(real_airflow, identities, ["deleted"], ["deleted"])
    with e2e.webhook_stopped(namespace):
        move_to_phases(e2e.api_client(), namespace, pods)  # the kubelet's status update
        writes, _ = finish_pods(real_airflow, identities, pods, ["delete"], ["deleted"],
                                tmp_path / "writes.jsonl")
    assert [(w["method"], w["path"].rsplit("/", 1)[-1], w["status"], w["user"])
            for w in writes] == [
        ("DELETE", pods["executor/deleted"], 200,
         service_account_username(namespace, SCHEDULER_SA)),
        ("DELETE", pods["kpo/deleted"], 200, service_account_username(namespace, WORKER_SA)),
    ]
    assert set(pods) == {"executor/deleted", "kpo/deleted"}
    assert KPO_TASKS["deleted"]["on_finish_action"] == "delete_pod"
