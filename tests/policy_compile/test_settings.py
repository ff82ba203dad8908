"""Settings: prefix, node-pool label, limits, and who creates Airflow's pods (given, or derived
from an official Helm chart release as the chart names its service accounts)."""

from __future__ import annotations

from webhook.airflow_pods import PodType
from webhook.policy.compile import airflow_chart_fullname
from webhook.policy.model import AIRFLOW_POD_TYPES, Limits, Settings, TrustedCreators

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"
SA = "system:serviceaccount"


def settings(spec: str) -> str:
    return API + f"kind: Settings\nmetadata: {{name: s}}\nspec:\n{spec}"


def test_no_settings_document_means_the_defaults(compiled) -> None:
    policy = compiled(API + "kind: Profile\nmetadata: {name: p}\nspec: {template: {}}\n")
    assert policy.settings == Settings()
    assert compiled(settings("  identity: {}\n")).settings == Settings()


def test_an_official_chart_release_trusts_its_scheduler_workers_and_triggerer(compiled) -> None:
    found = compiled(settings(
        "  annotationPrefix: example.com/\n  nodePoolLabel: pool\n"
        "  identity:\n    untrusted: deny\n    airflowReleases:\n"
        "      - {release: prod, namespace: af, taskNamespaces: [tasks, more]}\n"
        "      - {release: my-airflow, namespace: ops}\n"
        "      - {release: x, namespace: y, fullnameOverride: custom}\n"
        "    airflowAccounts: ['system:serviceaccount:ci:deployer']\n"
        "    trustedCreators:\n      - {namespaces: [etl], usernames: [bot]}\n"
        "      - {usernames: [kpo-bot], podTypes: [kpo]}\n")).settings
    kpo = frozenset({PodType.KPO})
    assert found == Settings(
        annotation_prefix="example.com/", node_pool_label="pool",
        trusted_creators=(
            TrustedCreators(("tasks", "more"), (f"{SA}:af:prod-airflow-scheduler",),
                            AIRFLOW_POD_TYPES),
            TrustedCreators(("tasks", "more"), (f"{SA}:af:prod-airflow-worker",
                                                f"{SA}:af:prod-airflow-triggerer"), kpo),
            TrustedCreators(("ops",), (f"{SA}:ops:my-airflow-scheduler",), AIRFLOW_POD_TYPES),
            TrustedCreators(("ops",), (f"{SA}:ops:my-airflow-worker",
                                       f"{SA}:ops:my-airflow-triggerer"), kpo),
            TrustedCreators(("y",), (f"{SA}:y:custom-scheduler",), AIRFLOW_POD_TYPES),
            TrustedCreators(("y",), (f"{SA}:y:custom-worker", f"{SA}:y:custom-triggerer"), kpo),
            TrustedCreators(("etl",), ("bot",), AIRFLOW_POD_TYPES),
            TrustedCreators((), ("kpo-bot",), kpo)),
        untrusted="deny",
        airflow_accounts=(f"{SA}:af:prod-airflow-dag-processor",
                          f"{SA}:af:prod-airflow-api-server",
                          f"{SA}:ops:my-airflow-dag-processor",
                          f"{SA}:ops:my-airflow-api-server",
                          f"{SA}:y:custom-dag-processor", f"{SA}:y:custom-api-server",
                          f"{SA}:ci:deployer"))


def test_an_empty_task_namespace_list_means_the_release_namespace(compiled) -> None:
    found = compiled(settings("  identity:\n    airflowReleases:\n"
                              "      - {release: a, namespace: af, taskNamespaces: []}\n")).settings
    assert [c.namespaces for c in found.trusted_creators] == [("af",), ("af",)]


def test_limits_name_the_fields_they_override(compiled) -> None:
    found = compiled(settings("  limits: {envFrom: 7, annotationsBytes: 1024}\n")).settings
    assert found.limits == Limits(env_from=7, annotations_bytes=1024)


def test_the_chart_fullname_is_cut_as_the_chart_cuts_it() -> None:
    assert airflow_chart_fullname("prod") == "prod-airflow"
    assert airflow_chart_fullname("airflow-prod") == "airflow-prod"
    assert airflow_chart_fullname("a" * 55) == "a" * 55 + "-airflow"
    assert airflow_chart_fullname("a" * 56) == "a" * 56 + "-airflo"
    assert airflow_chart_fullname("a" * 62 + "-airflow") == "a" * 62
    assert airflow_chart_fullname("r", "b" * 62 + "-x") == "b" * 62
    assert airflow_chart_fullname("r", "c" * 70) == "c" * 63
    # Only dashes are cut: a name that ends in any other character keeps it.
    assert airflow_chart_fullname("airflowX") == "airflowX"
    assert airflow_chart_fullname("r", "customX") == "customX"
