"""Which pods the create hooks select (webhook/hook_selection.py): one definition of Airflow's
markers, read by `identify` and rendered into the hooks' CEL."""

from __future__ import annotations

import pytest

from webhook.airflow_pods import MARKER_LABELS, PodType, identify
from webhook.cluster.registration import pod_match_expression
from webhook.hook_selection import (
    DEFAULT_POD_LABELS,
    MIRROR_POD_ANNOTATION,
    NOT_AIRFLOW,
    selected_by_hooks,
)

WORKER = "system:serviceaccount:airflow:airflow-worker"


def pod(labels: dict | None = None, annotations: dict | None = None) -> dict:
    meta: dict = {"name": "p"}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"containers": [{"name": "base", "image": "x"}]}}


def test_the_hooks_select_on_airflows_markers() -> None:
    assert DEFAULT_POD_LABELS == MARKER_LABELS == (
        ("kubernetes_executor", "True"), ("airflow-worker", None),
        ("kubernetes_pod_operator", "True"))
    assert pod_match_expression() == (
        'has(object.metadata.labels) && (\n'
        '  ("kubernetes_executor" in object.metadata.labels && '
        'object.metadata.labels["kubernetes_executor"] == "True") ||\n'
        '  "airflow-worker" in object.metadata.labels ||\n'
        '  ("kubernetes_pod_operator" in object.metadata.labels && '
        'object.metadata.labels["kubernetes_pod_operator"] == "True")\n)')


@pytest.mark.parametrize(("labels", "selected", "pod_type"), [
    ({"kubernetes_executor": "True", "airflow-worker": "1"}, True, PodType.EXECUTOR),
    ({"kubernetes_pod_operator": "True"}, True, PodType.KPO),
    # One executor marker alone is selected, and judged as the least trusted Airflow pod.
    ({"airflow-worker": "1"}, True, PodType.KPO),
    ({"kubernetes_executor": "True"}, True, PodType.KPO),
    # A marker with the wrong value marks nothing, for the hooks and for identify alike.
    ({"kubernetes_executor": "true"}, False, PodType.OTHER),
    ({"kubernetes_pod_operator": "False"}, False, PodType.OTHER),
    ({"app": "web"}, False, PodType.OTHER),
    (None, False, PodType.OTHER),
])
def test_a_pod_the_hooks_select_is_one_identify_calls_airflows(
        labels: dict | None, selected: bool, pod_type: PodType) -> None:
    assert selected_by_hooks(pod(labels)) is selected
    assert identify(pod(labels)).pod_type is pod_type


def test_a_mirror_pod_is_never_selected_even_with_markers_or_from_airflows_account() -> None:
    mirror = pod({"kubernetes_pod_operator": "True"}, {MIRROR_POD_ANNOTATION: "x"})
    assert MIRROR_POD_ANNOTATION == "kubernetes.io/config.mirror"
    assert not selected_by_hooks(mirror, username=WORKER, airflow_usernames=(WORKER,))


def test_an_unmarked_pod_is_selected_by_its_writer_only() -> None:
    assert selected_by_hooks(pod(), username=WORKER, airflow_usernames=(WORKER,))
    assert not selected_by_hooks(pod(), username="alice", airflow_usernames=(WORKER,))
    assert not selected_by_hooks(pod(), username=WORKER)


def test_admin_chosen_labels_replace_the_markers() -> None:
    chosen = (("component", "worker"),)
    assert selected_by_hooks(pod({"component": "worker"}), chosen)
    assert not selected_by_hooks(pod({"kubernetes_pod_operator": "True"}), chosen)


def test_a_malformed_pod_never_raises() -> None:
    for broken in (None, [], {"metadata": []}, {"metadata": {"labels": ["x"]}}):
        assert selected_by_hooks(broken) is False
    # Annotations that are not a map hide no mirror marker; the key alone marks a worker.
    assert selected_by_hooks({"metadata": {"annotations": "x",
                                           "labels": {"airflow-worker": 1}}}) is True


def test_why_nothing_was_checked_names_the_markers() -> None:
    assert NOT_AIRFLOW == (
        "not an Airflow pod (no kubernetes_executor=True with airflow-worker, nor "
        "kubernetes_pod_operator=True label) and no policy's labelSelector selects it")
