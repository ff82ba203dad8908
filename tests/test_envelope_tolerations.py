"""envelope: placement, tolerations — only allowed taint keys, values and effects; never a
key-less toleration (webhook/envelope/tolerations.py)."""

from __future__ import annotations

import pytest

from tests.support.envelope import (
    ENVELOPE,
    assert_envelope_case,
    envelope_section_checks,
    judged,
    with_spec,
)
from tests.support.policies import policy_set
from webhook.envelope import check_pod
from webhook.envelope.tolerations import toleration_allowed

# Each check: (check id, a pod that passes it, a pod that fails it, the exact message).
CASES = [
    ("tolerations", with_spec(tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "airflow", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}]),
     with_spec(tolerations=[{"key": "dedicated", "operator": "Exists",
                             "effect": "NoSchedule"}]),
     'spec.tolerations[0] must be an allowed toleration (dedicated=airflow:NoSchedule, '
     'nvidia.com/gpu), got {"effect":"NoSchedule","key":"dedicated","operator":"Exists"} '
     '(envelope: placement)'),
]


@pytest.mark.parametrize(("check_id", "passing", "failing", "message"), CASES,
                         ids=[c[0] for c in CASES])
def test_check(check_id, passing, failing, message):
    assert_envelope_case(check_id, passing, failing, message)


def test_every_check_of_the_section_has_a_case():
    assert {c[0] for c in CASES} == envelope_section_checks("tolerations")


def test_key_less_toleration_is_named_tolerate_all():
    assert judged(with_spec(tolerations=[{"operator": "Exists"}])) == [
        'spec.tolerations[0] must name a taint key: a key-less toleration tolerates every '
        'taint, got {"operator":"Exists"} (envelope: placement)']


def test_a_toleration_without_operator_is_equal_as_kubernetes_defaults_it() -> None:
    allowed = {"key": "dedicated", "value": "airflow", "effect": "NoSchedule"}
    assert toleration_allowed(allowed, ENVELOPE)
    assert toleration_allowed({**allowed, "operator": "Equal"}, ENVELOPE)
    assert not toleration_allowed({**allowed, "operator": "Exists"}, ENVELOPE)
    assert not toleration_allowed({**allowed, "value": "prod"}, ENVELOPE)
    assert not toleration_allowed("junk", ENVELOPE)
    assert not toleration_allowed(["dedicated"], ENVELOPE)


TWO_ENVELOPES = """
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: listed}
    spec:
      placement:
        tolerations: [{key: dedicated, values: [airflow, batch], effects: [NoSchedule, NoExecute]}]
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: unlisted}
    spec: {placement: {}}
"""


def test_the_refusal_lists_every_allowed_value_and_effect_or_none():
    listed, unlisted = policy_set(TWO_ENVELOPES).envelopes
    pod = {"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}
    assert [v.message for v in check_pod(pod, listed, "pool")] == [
        'spec.tolerations[0] must be an allowed toleration (dedicated=airflow|batch:'
        'NoSchedule|NoExecute), got {"key":"dedicated","operator":"Exists"} '
        '(envelope: placement)']
    assert [v.message for v in check_pod(pod, unlisted, "pool")] == [
        'spec.tolerations[0] must be an allowed toleration (none), got '
        '{"key":"dedicated","operator":"Exists"} (envelope: placement)']


def test_an_envelope_without_placement_allows_no_toleration_and_does_not_crash():
    no_placement = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: names-only}
        spec: {priorityClassNames: {allowed: ["*"]}}
    """).envelopes[0]
    assert not toleration_allowed({"key": "dedicated", "effect": "NoSchedule"}, no_placement)
    assert not toleration_allowed({"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                   "effect": "NoExecute"}, no_placement)
