"""envelope: placement — node pools, node labels and node affinity; a required pool pin that
no annotation can drop (webhook/envelope/placement.py)."""

from __future__ import annotations

import pytest

from tests.support.envelope import (
    ENVELOPE,
    POOL,
    REQUIRED,
    assert_envelope_case,
    envelope_section_checks,
    good_pod,
    judged,
    node_affinity,
    with_spec,
)
from webhook.envelope import check_fragment

# Each check: (check id, a pod that passes it, a pod that fails it, the exact message).
CASES = [
    ("nodeName", good_pod(), with_spec(nodeName="node-7"),
     'spec.nodeName must not be set: it bypasses the scheduler and every taint (pick a node '
     'pool instead), got "node-7" (envelope: placement)'),
    ("nodeSelector", with_spec(nodeSelector={POOL: "gpu", "kubernetes.io/arch": "arm64"}),
     with_spec(nodeSelector={POOL: "system"}),
     'spec.nodeSelector[example.com/pool] must be one of the allowed node pools (batch, gpu), '
     'got "system" (envelope: placement)'),
    ("nodeAffinity", with_spec(affinity=node_affinity(
        {"key": POOL, "operator": "In", "values": ["gpu"]})),
     with_spec(affinity=node_affinity({"key": POOL, "operator": "NotIn", "values": ["batch"]},
                                 required=False)),
     'spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference'
     '.matchExpressions[0] must use operator In with allowed node pools (batch, gpu): NotIn on '
     'example.com/pool admits other pools, got {"key":"example.com/pool","operator":"NotIn",'
     '"values":["batch"]} (envelope: placement)'),
    ("requiredNodePool", with_spec(nodeSelector={}, affinity=node_affinity(
        {"key": POOL, "operator": "In", "values": ["batch", "gpu"]})),
     with_spec(nodeSelector={}),
     'spec.nodeSelector[example.com/pool] must pin the pod to an allowed node pool (batch, '
     'gpu), by nodeSelector or required node affinity (Envelope/test requireNodePool), got '
     '<unset> (envelope: placement)'),
]


@pytest.mark.parametrize(("check_id", "passing", "failing", "message"), CASES,
                         ids=[c[0] for c in CASES])
def test_check(check_id, passing, failing, message):
    assert_envelope_case(check_id, passing, failing, message)


def test_every_check_of_the_section_has_a_case():
    assert {c[0] for c in CASES} == envelope_section_checks("placement")


@pytest.mark.parametrize("expression", [
    {"key": POOL, "operator": "Exists"},
    {"key": POOL, "operator": "In", "values": ["batch", "system"]},
    {"key": POOL, "operator": "DoesNotExist"},
    {"key": POOL, "operator": "Gt", "values": ["1"]},
    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-7"]}])
def test_affinity_escapes_are_refused(expression):
    messages = judged(with_spec(affinity=node_affinity(expression)))
    assert any(m.startswith("spec.affinity.nodeAffinity.requiredDuringScheduling"
                            "IgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]")
               for m in messages), messages


def test_match_fields_pin_to_a_node_like_node_name():
    pod = with_spec(affinity={"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}})
    assert judged(pod) == [
        'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.'
        'nodeSelectorTerms[0].matchFields[0] must not select nodes by field (it pins the pod to '
        'named nodes, as nodeName does), got {"key":"metadata.name","operator":"In",'
        '"values":["n1"]} (envelope: placement)']


def test_an_unpinned_affinity_term_ored_with_a_pinned_one_does_not_pin():
    pod = with_spec(nodeSelector={}, affinity={"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": POOL, "operator": "In", "values": ["gpu"]}]},
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In",
                               "values": ["amd64"]}]}]}}})
    assert [m for m in judged(pod) if "must pin the pod" in m]


def test_fragment_pin_removal_is_refused_when_a_pool_is_required():
    assert [v.message for v in check_fragment({"spec": {"nodeSelector": None}},
                                              ENVELOPE, POOL)] == [
        'spec.nodeSelector must not be removed: the pod must stay pinned to a node pool '
        '(Envelope/test requireNodePool), got <unset> (envelope: placement)']
    assert [v.message for v in check_fragment({"spec": {"nodeSelector": {POOL: None}}},
                                              ENVELOPE, POOL)] == [
        'spec.nodeSelector[example.com/pool] must not be removed: the pod must stay pinned to '
        'a node pool (Envelope/test requireNodePool), got <unset> (envelope: placement)']
