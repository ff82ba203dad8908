"""Airflow's own writes to live pods, as real Airflow sent them (tests/fixtures/airflow-requests/,
captured by tools/capture_airflow_requests.py), keep working whatever the webhook is asked.

For each captured write, kube-apiserver's AdmissionReview (an UPDATE with the pod before and
after, or a DELETE) is put to every hook with the bundled policies: each must be allowed, with
no patch (a pod's spec cannot change on UPDATE; a patch there would fail Airflow's write with a
422). Deletes are never registered, so no outage of the webhook can block one.
"""

from __future__ import annotations

import copy

import pytest

from tests.support.airflow_requests import (
    VERSIONS,
    admission_review,
    load_requests,
    registered_operations,
)
from webhook.cluster.registration import webhook_configurations
from webhook.policy.model import PolicySet
from webhook.review import MUTATE, MUTATE_AND_VALIDATE, VALIDATE, answer

SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
WORKER = "system:serviceaccount:airflow:airflow-worker"
SMP = "application/strategic-merge-patch+json"


def labels(**values: str) -> dict:
    return {"metadata": {"labels": values}}


# What Airflow 2.10.5 (provider 10.1.0) and 3.3.2 (10.25.0) both send, in order: (method, pod,
# Content-Type, body, who). The executor after a restart as scheduler job 2: adopts the running
# pod of job 1, then the two Succeeded ones; marks one done, deletes the other; revokes the
# running one. The KubernetesPodOperator's cleanup and on_kill, and find_pod retiring the older
# of two pods with the same labels.
EXPECTED = [
    ("PATCH", "executor/running", SMP, labels(**{"airflow-worker": "2"}), SCHEDULER),
    ("PATCH", "executor/deleted", SMP, labels(**{"airflow-worker": "2"}), SCHEDULER),
    ("PATCH", "executor/done", SMP, labels(**{"airflow-worker": "2"}), SCHEDULER),
    ("PATCH", "executor/done", SMP, labels(airflow_executor_done="True"), SCHEDULER),
    ("DELETE", "executor/deleted", "application/json", {}, SCHEDULER),
    ("PATCH", "executor/running", SMP, labels(airflow_pod_revoked="True"), SCHEDULER),
    ("DELETE", "executor/running", "application/json", {}, SCHEDULER),
    ("PATCH", "kpo/kept", SMP, labels(already_checked="True"), WORKER),
    ("PATCH", "kpo/failed", SMP, labels(already_checked="True"), WORKER),
    ("DELETE", "kpo/failed", "application/json", {}, WORKER),
    ("DELETE", "kpo/deleted", "application/json", {}, WORKER),
    ("DELETE", "kpo/killed", "application/json", None, WORKER),
    ("PATCH", "kpo/duplicate-1", SMP, labels(already_checked="True"), WORKER),
    ("DELETE", "kpo/duplicate-1", "application/json", {}, WORKER),
]


def captured(version: str) -> list[tuple[str, dict]]:
    return list(load_requests(version).items())


@pytest.mark.parametrize("version", VERSIONS)
def test_airflow_sends_label_patches_and_deletes_to_live_pods(version: str) -> None:
    documents = [doc for _, doc in captured(version)]
    assert [(d["request"]["method"], d["pod_step"], d["request"]["content_type"],
             d["request"]["body"], d["request"]["user"]) for d in documents] == EXPECTED
    assert {d["status"] for d in documents} == {200}
    assert {d["airflow"] for d in documents} == {version}


@pytest.mark.parametrize("version", VERSIONS)
def test_a_patch_changes_only_the_labels_it_names(version: str) -> None:
    """The stored pod after each PATCH is the pod before with the patch's labels merged in:
    nothing else of the pod changes, so an update judged on what changed sees only labels."""
    for name, document in captured(version):
        if document["request"]["method"] != "PATCH":
            continue
        old, new = document["old_object"], document["response"]
        added = document["request"]["body"]["metadata"]["labels"]
        assert new["metadata"]["labels"] == {**old["metadata"]["labels"], **added}, name
        assert new["spec"] == old["spec"], name
        assert new["metadata"]["annotations"] == old["metadata"]["annotations"], name


@pytest.mark.parametrize("version", VERSIONS)
def test_the_validating_hook_judges_each_patch_and_allows_it(
        version: str, bundled: PolicySet) -> None:
    """Judged, not skipped: a PATCH by Airflow's account is a later write the webhook checks."""
    for name, document in captured(version):
        if document["request"]["method"] == "PATCH":
            _status, _body, decision = answer(VALIDATE, admission_review(document), bundled)
            assert (decision.decision, decision.rules) == ("allow", ()), name


def test_the_schedulers_relabel_is_denied_from_the_workers_token(bundled: PolicySet) -> None:
    """The control: the adoption patch the scheduler may send is refused from a task's token
    (a worker may not move an executor pod to another scheduler)."""
    document = copy.deepcopy(dict(captured("3.3.2"))["01-patch-executor-running.json"])
    document["request"]["user"] = WORKER
    _status, body, decision = answer(VALIDATE, admission_review(document), bundled)
    assert (decision.decision, decision.rules) == ("deny", ("airflow: ownedMetadata",))
    assert body["response"]["allowed"] is False
    assert "metadata.labels.airflow-worker must stay '1'" in body["response"]["status"]["message"]


def test_an_executor_label_added_to_a_kpo_pod_is_denied(bundled: PolicySet) -> None:
    """The control for already_checked: the same KPO cleanup patch, had it also added the
    executor's airflow-worker label, is refused."""
    document = copy.deepcopy(dict(captured("3.3.2"))["08-patch-kpo-kept.json"])
    document["response"]["metadata"]["labels"]["airflow-worker"] = "2"
    _status, _body, decision = answer(VALIDATE, admission_review(document), bundled)
    assert decision.decision == "deny"
    assert "airflow: podIdentity" in decision.rules


@pytest.mark.parametrize("hook", [MUTATE, VALIDATE, MUTATE_AND_VALIDATE])
@pytest.mark.parametrize("version", VERSIONS)
def test_every_hook_allows_airflows_writes_without_a_patch(
        version: str, hook: str, bundled: PolicySet) -> None:
    for name, document in captured(version):
        review = admission_review(document, uid=f"uid-{name}")
        status, body, _decision = answer(hook, review, bundled)
        assert status == 200, (name, body)
        response = body["response"]
        assert response["uid"] == f"uid-{name}", name
        assert response["allowed"] is True, (name, response)
        assert "patch" not in response and "patchType" not in response, (name, response)


def test_the_review_is_what_kube_apiserver_sends_for_a_patch_and_a_delete() -> None:
    documents = dict(captured("3.3.2"))
    patch = admission_review(documents["01-patch-executor-running.json"])["request"]
    assert (patch["operation"], patch["name"], patch["namespace"]) == (
        "UPDATE", "webhook-e2e-running-task", "airflow")
    assert patch["oldObject"]["metadata"]["labels"]["airflow-worker"] == "1"
    assert patch["object"]["metadata"]["labels"]["airflow-worker"] == "2"
    assert patch["userInfo"]["username"] == SCHEDULER
    assert patch["options"] == {"apiVersion": "meta.k8s.io/v1", "kind": "PatchOptions"}
    delete = admission_review(documents["12-delete-kpo-killed.json"])["request"]
    assert (delete["operation"], delete["object"]) == ("DELETE", None)
    assert delete["oldObject"]["metadata"]["name"] == delete["name"]
    assert delete["userInfo"]["username"] == WORKER


@pytest.mark.parametrize("single_call", [False, True])
def test_no_registration_sends_a_delete_so_an_outage_never_blocks_one(single_call: bool) -> None:
    rendered = webhook_configurations(b"", url="https://127.0.0.1:8443",
                                      single_call=single_call)
    asked = registered_operations(rendered)
    assert asked, "no hook registered for pods"
    for hook, operations in asked.items():
        assert not {"DELETE", "*"} & operations, (hook, operations)
