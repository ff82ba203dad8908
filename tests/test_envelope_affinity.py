"""envelope: affinity — pod (anti-)affinity and topology spread stay within the pod's own
namespace and the allowed topology keys."""

from __future__ import annotations

import json

from tests.support.pods import airflow_pod
from tests.support.policies import bundled_envelope_messages, policy_set
from webhook.airflow_pods import PodType
from webhook.envelope.registry import check_fragment, check_pod
from webhook.mutation.mutate import mutate_pod

RULE = "envelope: affinity"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
NOTE = "(Envelope/airflow affinity)"
KEYS = "(kubernetes.io/hostname, topology.kubernetes.io/zone, topology.kubernetes.io/region)"


def kpo(affinity: dict | None = None, spreads: list | None = None) -> dict:
    pod = airflow_pod("airflow3-kpo")
    if affinity is not None:
        pod["spec"]["affinity"] = affinity
    if spreads is not None:
        pod["spec"]["topologySpreadConstraints"] = spreads
    return pod


def test_an_anti_affinity_against_every_namespace_on_the_os_key_is_refused():
    pod = kpo({"podAntiAffinity": {REQUIRED: [{
        "labelSelector": {}, "namespaceSelector": {}, "topologyKey": "kubernetes.io/os"}]}})
    where = f"spec.affinity.podAntiAffinity.{REQUIRED}[0]"
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        f"{where}.namespaceSelector must not be set: a term may only look at pods of the "
        f"pod's own namespace (an empty selector selects every namespace) {NOTE}, got {{}} "
        "(envelope: affinity)",
        f'{where}.topologyKey must be an allowed topology key {KEYS} {NOTE}, got '
        '"kubernetes.io/os" (envelope: affinity)']


def test_preferred_terms_are_held_too_and_namespaces_may_name_only_its_own():
    pod = kpo({"podAffinity": {PREFERRED: [{"weight": 1, "podAffinityTerm": {
        "labelSelector": {}, "namespaces": ["data-airflow", "airflow"],
        "topologyKey": "kubernetes.io/hostname"}}]}})
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        f"spec.affinity.podAffinity.{PREFERRED}[0].podAffinityTerm.namespaces must name only "
        f'the pod\'s own namespace (data-airflow) {NOTE}, got ["data-airflow","airflow"] '
        "(envelope: affinity)"]
    pod["spec"]["affinity"]["podAffinity"][PREFERRED][0]["podAffinityTerm"]["namespaces"] = [
        "data-airflow"]
    assert bundled_envelope_messages(pod, "kpo", RULE) == []


def test_topology_spread_keys_are_held():
    pod = kpo(spreads=[{"maxSkew": 1, "topologyKey": "kubernetes.io/os",
                        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}},
                       {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}])
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        f'spec.topologySpreadConstraints[0].topologyKey must be an allowed topology key {KEYS} '
        f'{NOTE}, got "kubernetes.io/os" (envelope: affinity)']


def test_only_preferred_when_the_admin_says_so():
    envelope = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: soft}
        spec: {affinity: {topologyKeys: ["*"], allowRequired: false}}
    """).envelopes[0]
    term = {"labelSelector": {}, "topologyKey": "kubernetes.io/hostname"}
    pod = kpo({"podAntiAffinity": {REQUIRED: [term],
                                   PREFERRED: [{"weight": 1, "podAffinityTerm": term}]}},
              [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}},
               {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {}}])
    assert [v.message for v in check_pod(pod, envelope, "p", (), PodType.KPO,
                                         "data-airflow")] == [
        f"spec.affinity.podAntiAffinity.{REQUIRED}[0] must be preferred, not required "
        "(allowRequired: false) (Envelope/soft affinity), got "
        '{"labelSelector":{},"topologyKey":"kubernetes.io/hostname"} (envelope: affinity)',
        "spec.topologySpreadConstraints[0].whenUnsatisfiable must be ScheduleAnyway "
        '(allowRequired: false) (Envelope/soft affinity), got "DoNotSchedule" '
        "(envelope: affinity)"]


def test_an_annotation_fragment_names_no_other_namespace(bundled):
    fragment = {"spec": {"affinity": {"podAffinity": {REQUIRED: [{
        "labelSelector": {}, "namespaces": ["data-airflow"],
        "topologyKey": "kubernetes.io/hostname"}]}}}}
    assert [v.path for v in check_fragment(fragment, bundled.envelopes[0], "node-pool")] == [
        f"spec.affinity.podAffinity.{REQUIRED}[0].namespaces"]  # no namespace known: none
    assert check_fragment(fragment, bundled.envelopes[0], "node-pool", "data-airflow") == []
    assert [v.path for v in check_fragment(fragment, bundled.envelopes[0], "node-pool",
                                           "team-b")] == [
        f"spec.affinity.podAffinity.{REQUIRED}[0].namespaces"]


def test_the_pods_own_namespace_falls_back_to_its_metadata():
    envelope = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: none}
        spec: {affinity: {topologyKeys: []}}
    """).envelopes[0]
    term = {"labelSelector": {}, "namespaces": ["data-airflow"],
            "topologyKey": "kubernetes.io/hostname"}
    pod = kpo({"podAffinity": {REQUIRED: [term]}},
              ["not a constraint", {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                    "whenUnsatisfiable": "DoNotSchedule"}])
    where = f"spec.affinity.podAffinity.{REQUIRED}[0]"
    keys = ('must be an allowed topology key (none) (Envelope/none affinity), got '
            '"kubernetes.io/hostname" (envelope: affinity)')
    assert [v.message for v in check_pod(pod, envelope, "p", (), PodType.KPO)] == [
        f"{where}.topologyKey {keys}", f"spec.topologySpreadConstraints[1].topologyKey {keys}"]
    del pod["metadata"]["namespace"]
    assert next(v.message for v in check_pod(pod, envelope, "p", (), PodType.KPO)) == (
        f"{where}.namespaces must name only the pod's own namespace (its namespace) "
        '(Envelope/none affinity), got ["data-airflow"] (envelope: affinity)')


def test_an_annotation_may_name_its_pods_own_namespace(bundled):
    term = {"labelSelector": {"matchLabels": {"dag_id": "ml_pipeline"}},
            "topologyKey": "kubernetes.io/hostname"}
    pod = airflow_pod("airflow3-kpo")
    worker = "system:serviceaccount:airflow:airflow-worker"
    for namespaces, refused in ((["data-airflow"], []), (["airflow"], [
            "annotation airflow-pod-webhook.io/pod-override: "
            f"spec.affinity.podAntiAffinity.{PREFERRED}[0].podAffinityTerm.namespaces: must "
            "name only the pod's own namespace (data-airflow) (Envelope/airflow affinity), got "
            '["airflow"] (envelope: affinity)'])):
        preferred = [{"weight": 10, "podAffinityTerm": {**term, "namespaces": namespaces}}]
        pod["metadata"]["annotations"] = {"airflow-pod-webhook.io/pod-override": json.dumps(
            {"spec": {"affinity": {"podAntiAffinity": {PREFERRED: preferred}}}})}
        result = mutate_pod(pod, bundled, "data-airflow", worker)
        assert [r.message for r in result.refusals] == refused
