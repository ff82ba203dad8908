"""envelope: priorityClassNames, serviceAccountNames, schedulerNames, runtimeClassNames,
schedulingGates — allowlists of globs (webhook/envelope/name_allowlists.py)."""

from __future__ import annotations

import pytest

from tests.conftest import (
    POOL,
    assert_envelope_case,
    envelope_section_checks,
    good_pod,
    policy_set,
    with_spec,
)
from webhook.envelope import check_pod

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
