"""API Priority and Fairness for the pods Airflow's task accounts write
(webhook/cluster/flowcontrol.py), as an admin gets it from the kustomize base and the Helm
chart: the task accounts are each release's -worker, -triggerer and -dag-processor, named as
the webhook names the release's accounts; their pod writes get a Limited, non-borrowing,
queuing level of their own; the scheduler stays out. tests/e2e/test_flowcontrol.py checks that
kube-apiserver accepts the objects and classifies those users with them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.helm_chart import IMAGE_VALUES, notes, render
from webhook.cluster.flowcontrol import (
    flow_control_objects,
    settings_releases,
    task_accounts,
)

REPO = Path(__file__).resolve().parent.parent
COMPONENT = REPO / "deploy" / "components" / "priority-and-fairness" / "flowcontrol.yaml"


def test_each_release_contributes_its_worker_triggerer_and_dag_processor() -> None:
    releases = [{"release": "prod", "namespace": "prod", "taskNamespaces": ["prod-tasks"]},
                {"release": "airflow", "namespace": "data"},
                {"release": "team", "namespace": "t", "fullnameOverride": "custom"}]
    assert task_accounts(releases) == [
        {"namespace": "prod", "name": "prod-airflow-worker"},
        {"namespace": "prod", "name": "prod-airflow-triggerer"},
        {"namespace": "prod", "name": "prod-airflow-dag-processor"},
        {"namespace": "data", "name": "airflow-worker"},
        {"namespace": "data", "name": "airflow-triggerer"},
        {"namespace": "data", "name": "airflow-dag-processor"},
        {"namespace": "t", "name": "custom-worker"},
        {"namespace": "t", "name": "custom-triggerer"},
        {"namespace": "t", "name": "custom-dag-processor"},
    ]


def test_a_release_named_twice_is_one_set_of_subjects() -> None:
    release = {"release": "airflow", "namespace": "airflow"}
    assert task_accounts([release, dict(release)]) == task_accounts([release])


def test_the_level_has_one_share_no_borrowing_and_queues() -> None:
    level, schema = flow_control_objects([{"release": "airflow", "namespace": "airflow"}])
    assert level["kind"] == "PriorityLevelConfiguration"
    assert level["spec"] == {"type": "Limited", "limited": {
        "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
        "limitResponse": {"type": "Queue", "queuing": {
            "queues": 16, "handSize": 4, "queueLengthLimit": 50}}}}
    assert schema["kind"] == "FlowSchema"
    assert schema["spec"]["priorityLevelConfiguration"] == {"name": level["metadata"]["name"]}
    assert level["metadata"]["name"] == "airflow-pod-webhook-airflow-tasks"
    # Ahead of the default service-accounts schema (9000), behind exempt and probes.
    assert schema["spec"]["matchingPrecedence"] == 1000


def test_only_pod_writes_of_the_task_accounts_are_selected() -> None:
    _, schema = flow_control_objects([{"release": "airflow", "namespace": "airflow"}])
    (rule,) = schema["spec"]["rules"]
    assert rule["resourceRules"] == [{
        "verbs": ["create", "update", "patch"], "apiGroups": [""],
        "resources": ["pods", "pods/ephemeralcontainers"], "namespaces": ["*"]}]
    names = [s["serviceAccount"]["name"] for s in rule["subjects"]]
    assert names == ["airflow-worker", "airflow-triggerer", "airflow-dag-processor"]
    assert "nonResourceRules" not in rule  # reads, logs, watches keep their usual level


def test_no_release_no_objects() -> None:
    assert flow_control_objects([]) == []


def test_the_first_settings_document_names_the_releases() -> None:
    documents = [{"kind": "Profile"},
                 {"kind": "Settings", "spec": {"identity": {"airflowReleases": [
                     {"release": "a", "namespace": "b"}]}}},
                 {"kind": "Settings", "spec": {"identity": {"airflowReleases": [
                     {"release": "ignored", "namespace": "x"}]}}}]
    assert settings_releases(documents) == [{"release": "a", "namespace": "b"}]
    assert settings_releases([{"kind": "Settings", "spec": {}}]) == []


def test_the_kustomize_component_is_the_bundled_settings_objects() -> None:
    documents = [doc for path in sorted((REPO / "policies").glob("*.yaml"))
                 for doc in yaml.safe_load_all(path.read_text())]
    shipped = [doc for doc in yaml.safe_load_all(COMPONENT.read_text()) if doc]
    assert shipped == flow_control_objects(settings_releases(documents))


helm_python = pytest.importorskip("helm_python", reason="pip install helm-python-sdk ([test])")


def chart_flowcontrol(values: dict) -> list[dict]:
    objects = [o for o in render({**IMAGE_VALUES, **values})
               if o["apiVersion"].startswith("flowcontrol.apiserver.k8s.io/")]
    for obj in objects:  # Helm's own labels (the component has only the base's)
        obj["metadata"]["labels"] = {k: v for k, v in obj["metadata"]["labels"].items()
                                     if k.startswith("app.kubernetes.io/")
                                     and k not in ("app.kubernetes.io/instance",
                                                   "app.kubernetes.io/managed-by",
                                                   "app.kubernetes.io/version")}
    return objects


RELEASES = {
    "bundled": ({}, [{"release": "airflow", "namespace": "airflow"}]),
    "two releases": (
        {"airflow": {"releases": [
            {"release": "prod", "namespace": "prod", "taskNamespaces": ["prod", "p2"]},
            {"release": "etl", "namespace": "etl", "fullnameOverride": "etl-af"}]}},
        [{"release": "prod", "namespace": "prod"},
         {"release": "etl", "namespace": "etl", "fullnameOverride": "etl-af"}]),
    "settings file": (
        {"policies": {"files": {"00-settings.yaml": yaml.safe_dump({
            "apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": "Settings",
            "metadata": {"name": "settings"},
            "spec": {"identity": {"airflowReleases": [
                {"release": "team-airflow", "namespace": "team"}]}}})}}},
        [{"release": "team-airflow", "namespace": "team"}]),
}


@pytest.mark.parametrize(("values", "releases"), RELEASES.values(), ids=RELEASES.keys())
def test_the_chart_renders_the_objects_for_the_releases_its_settings_name(
        values: dict, releases: list[dict]) -> None:
    assert chart_flowcontrol(values) == flow_control_objects(releases)


def test_the_chart_values_tune_the_level_and_add_subjects() -> None:
    extra = {"kind": "ServiceAccount",
             "serviceAccount": {"namespace": "ml", "name": "kpo-runner"}}
    level, schema = chart_flowcontrol({"priorityAndFairness": {
        "nominalConcurrencyShares": 2, "matchingPrecedence": 500,
        "queuing": {"queues": 8, "handSize": 2, "queueLengthLimit": 10},
        "extraSubjects": [extra]}})
    assert level["spec"]["limited"]["nominalConcurrencyShares"] == 2
    assert level["spec"]["limited"]["limitResponse"]["queuing"] == {
        "queues": 8, "handSize": 2, "queueLengthLimit": 10}
    assert schema["spec"]["matchingPrecedence"] == 500
    assert schema["spec"]["rules"][0]["subjects"][-1] == extra
    assert len(schema["spec"]["rules"][0]["subjects"]) == 4


def test_the_chart_renders_none_when_disabled_or_without_a_release() -> None:
    assert chart_flowcontrol({"priorityAndFairness": {"enabled": False}}) == []
    assert chart_flowcontrol({"airflow": {"accounts": ["system:serviceaccount:x:y"]},
                              "settings": {}}) == []


def test_a_precedence_at_or_after_the_service_accounts_default_is_refused() -> None:
    with pytest.raises(helm_python.HelmError, match="matchingPrecedence"):
        render({**IMAGE_VALUES, "priorityAndFairness": {"matchingPrecedence": 9000}})


def test_the_notes_name_the_task_accounts_and_the_flowschema() -> None:
    text = notes({**IMAGE_VALUES, "airflow": {"releases": [
        {"release": "prod", "namespace": "prod"}]}})
    section = text[text.index("API Priority and Fairness"):]
    assert [line.strip() for line in section.splitlines()
            if line.strip().startswith("system:serviceaccount:")] == [
        "system:serviceaccount:prod:prod-airflow-worker",
        "system:serviceaccount:prod:prod-airflow-triggerer",
        "system:serviceaccount:prod:prod-airflow-dag-processor"]
    assert "kubectl get flowschema airflow-pod-webhook-airflow-tasks" in section
    assert "API Priority and Fairness" not in notes(
        {**IMAGE_VALUES, "priorityAndFairness": {"enabled": False}})
