"""envelope: labels — a task pod cannot wear the labels the chart's Services and
NetworkPolicies select Airflow's components by; executor pods keep the worker template's."""

from __future__ import annotations

from tests.support.pods import airflow_pod
from tests.support.policies import bundled_envelope_messages, policy_set
from webhook.airflow_pods import PodType
from webhook.envelope.registry import check_fragment, check_pod

RULE = "envelope: labels"
WHY = "must not be set: Services and NetworkPolicies select Airflow's components by it"
COMPONENTS = ("component=api-server|webserver|scheduler|triggerer|dag-processor|worker|statsd|"
              "pgbouncer|redis|flower")


def test_a_kpo_pod_labelled_as_the_api_server_is_refused():
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["labels"].update({"tier": "airflow", "component": "api-server",
                                      "release": "airflow", "app.kubernetes.io/name": "airflow",
                                      "team": "a", "release-train": "airflow"})
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        f'metadata.labels.component {WHY} ({COMPONENTS}; Envelope/airflow labels), got '
        '"api-server" (envelope: labels)',
        f'metadata.labels.release {WHY} (release=airflow; Envelope/airflow labels), got '
        '"airflow" (envelope: labels)',
        f'metadata.labels.tier {WHY} (tier=airflow; Envelope/airflow labels), got "airflow" '
        '(envelope: labels)',
        f'metadata.labels[app.kubernetes.io/name] {WHY} (app.kubernetes.io/*; Envelope/airflow '
        'labels), got "airflow" (envelope: labels)']


def test_other_values_of_those_keys_are_fine():
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["labels"].update({"tier": "batch", "component": "etl", "release": "v2"})
    assert bundled_envelope_messages(pod, "kpo", RULE) == []
    # ... and do not hide a forbidden label after them
    pod["metadata"]["labels"]["app.kubernetes.io/part-of"] = "airflow"
    assert [m.split(" must")[0] for m in bundled_envelope_messages(pod, "kpo", RULE)] == [
        "metadata.labels[app.kubernetes.io/part-of]"]


def test_an_executor_pod_keeps_the_worker_templates_labels_and_nothing_more():
    pod = airflow_pod("airflow2-executor")
    assert {k: pod["metadata"]["labels"][k] for k in ("tier", "component", "release")} == {
        "tier": "airflow", "component": "worker", "release": "airflow"}
    assert bundled_envelope_messages(pod, "executor", RULE) == []
    assert len(bundled_envelope_messages(pod, "kpo", RULE)) == 3  # not a KPO pod's to wear
    pod["metadata"]["labels"]["component"] = "api-server"
    assert bundled_envelope_messages(pod, "executor", RULE) == [
        f'metadata.labels.component {WHY} ({COMPONENTS}; Envelope/airflow labels), got '
        '"api-server" (envelope: labels)']


def test_an_annotation_may_never_set_them_even_the_templates_own(bundled):
    fragment = {"metadata": {"labels": {"component": "worker", "team": "a"}}}
    assert [v.path for v in check_fragment(fragment, bundled.envelopes[0], "node-pool")] == [
        "metadata.labels.component"]
    assert check_fragment({"metadata": {"labels": {"component": None}}},
                          bundled.envelopes[0], "node-pool") == []


def test_a_label_every_rule_it_breaks_is_named():
    envelope = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: two}
        spec:
          labels:
            forbidden: [{key: "app.kubernetes.io/*"}, {key: "*/component", values: [web]}]
    """).envelopes[0]
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["labels"]["app.kubernetes.io/component"] = "web"
    assert [v.message for v in check_pod(pod, envelope, "p", (), PodType.KPO)] == [
        f"metadata.labels[app.kubernetes.io/component] {WHY} (app.kubernetes.io/*, "
        '*/component=web; Envelope/two labels), got "web" (envelope: labels)']
