"""envelope: priorityClassNames, serviceAccountNames, schedulerNames, runtimeClassNames,
schedulingGates — allowlists of globs (webhook/envelope/name_allowlists.py)."""

from __future__ import annotations

import pytest

from tests.support.envelope import (
    POOL,
    assert_envelope_case,
    envelope_section_checks,
    good_pod,
    with_spec,
)
from tests.support.policies import policy_set
from webhook.envelope import check_fragment, check_pod

# Each check: (check id, a pod that passes it, a pod that fails it, the exact message).
CASES = [
    ("priorityClassName", with_spec(priorityClassName="airflow-high"),
     with_spec(priorityClassName="system-node-critical"),
     'spec.priorityClassName must be one of airflow-* (Envelope/test priorityClassNames), got '
     '"system-node-critical" (envelope: priorityClassNames)'),
    ("serviceAccountName", with_spec(serviceAccountName="etl-runner"),
     with_spec(serviceAccountName="airflow-worker", serviceAccount="airflow-scheduler"),
     'spec.serviceAccount is forbidden (*scheduler*) (Envelope/test serviceAccountNames), got '
     '"airflow-scheduler" (envelope: serviceAccountNames)'),
    ("schedulerName", with_spec(schedulerName="default-scheduler"),
     with_spec(schedulerName="my-scheduler"),
     'spec.schedulerName must be one of default-scheduler (Envelope/test schedulerNames), got '
     '"my-scheduler" (envelope: schedulerNames)'),
    ("runtimeClassName", with_spec(runtimeClassName="gvisor"),
     with_spec(runtimeClassName="kata"),
     'spec.runtimeClassName must be one of gvisor (Envelope/test runtimeClassNames), got '
     '"kata" (envelope: runtimeClassNames)'),
    ("schedulingGates", with_spec(schedulingGates=[{"name": "example.com/quota"}]),
     with_spec(schedulingGates=[{"name": "example.com/quota"}, {"name": "evil.io/later"}]),
     'spec.schedulingGates[1].name must be one of example.com/* (Envelope/test '
     'schedulingGates), got "evil.io/later" (envelope: schedulingGates)'),
]


@pytest.mark.parametrize(("check_id", "passing", "failing", "message"), CASES,
                         ids=[c[0] for c in CASES])
def test_check(check_id, passing, failing, message):
    assert_envelope_case(check_id, passing, failing, message)


def test_every_check_of_the_section_has_a_case():
    assert {c[0] for c in CASES} == envelope_section_checks("name_allowlists")


def test_service_account_unset_is_judged_as_default():
    envelope = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: sa}
        spec: {serviceAccountNames: {allowed: [airflow-worker]}}
    """).envelopes[0]
    pod = good_pod()
    del pod["spec"]["serviceAccountName"]
    assert [v.message for v in check_pod(pod, envelope, POOL)] == [
        'spec.serviceAccountName must be one of airflow-worker (Envelope/sa '
        'serviceAccountNames), got "default" (envelope: serviceAccountNames)']


NAMES = policy_set("""
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: names}
    spec:
      serviceAccountNames: {allowed: [etl, reports], forbidden: ["*scheduler*", "airflow-*"]}
      schedulerNames: {allowed: [batch-scheduler]}
      schedulingGates: {allowed: ["example.com/*"]}
""").envelopes[0]


def messages(pod: dict) -> list[str]:
    return [v.message for v in check_pod(pod, NAMES, POOL)]


def test_a_refusal_names_every_forbidden_glob_it_matches_or_every_allowed_name():
    assert messages({"spec": {"serviceAccountName": "airflow-scheduler",
                              "schedulerName": "batch-scheduler"}}) == [
        'spec.serviceAccountName is forbidden (*scheduler*, airflow-*) (Envelope/names '
        'serviceAccountNames), got "airflow-scheduler" (envelope: serviceAccountNames)']
    assert messages({"spec": {"serviceAccountName": "ml",
                              "schedulerName": "batch-scheduler"}}) == [
        'spec.serviceAccountName must be one of etl, reports (Envelope/names '
        'serviceAccountNames), got "ml" (envelope: serviceAccountNames)']


def test_an_empty_allowlist_says_none_is_allowed():
    envelope = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: none}
        spec: {runtimeClassNames: {allowed: []}}
    """).envelopes[0]
    assert [v.message for v in check_pod({"spec": {"runtimeClassName": "kata"}}, envelope,
                                         POOL)] == [
        'spec.runtimeClassName must be one of (none allowed) (Envelope/none '
        'runtimeClassNames), got "kata" (envelope: runtimeClassNames)']


def test_an_unset_scheduler_is_the_default_one_on_the_pod_and_nothing_in_a_fragment():
    assert messages({"spec": {"serviceAccountName": "etl"}}) == [
        'spec.schedulerName must be one of batch-scheduler (Envelope/names schedulerNames), '
        'got "default-scheduler" (envelope: schedulerNames)']
    assert check_fragment({"spec": {}}, NAMES, POOL) == []
    assert [v.message for v in check_fragment({"spec": {"schedulerName": "evil"}}, NAMES,
                                              POOL)] == [
        'spec.schedulerName must be one of batch-scheduler (Envelope/names schedulerNames), '
        'got "evil" (envelope: schedulerNames)']


def test_a_scheduling_gate_without_a_name_is_refused_and_a_bare_string_judged_as_one():
    pod = {"spec": {"serviceAccountName": "etl", "schedulerName": "batch-scheduler",
                    "schedulingGates": [{"name": 3}, "example.com/quota", {}]}}
    assert messages(pod) == [
        'spec.schedulingGates[0] must name a gate, got 3 (envelope: schedulingGates)',
        'spec.schedulingGates[2] must name a gate, got <unset> (envelope: schedulingGates)']
