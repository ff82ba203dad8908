"""envelope: resources — requests and limits per container and per pod, counted as Kubernetes
counts them (webhook/envelope/resources.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.envelope import (
    ENVELOPE,
    POOL,
    assert_envelope_case,
    envelope_section_checks,
    good_pod,
    judged,
    two_containers,
    with_base,
    with_spec,
)
from tests.support.policies import policy_set
from webhook.envelope import check_fragment, check_pod
from webhook.envelope.resources import kube_quantity, pod_totals
from webhook.kube.quantity import shown_total

# Each check: (check id, a pod that passes it, a pod that fails it, the exact message).
CASES = [
    ("resourceNames", with_base(resources={"limits": {"nvidia.com/gpu": "1"}}),
     with_base(resources={"limits": {"hugepages-1Gi": "2Gi"}}),
     [# a limit alone is also the request: both fields are judged
      'spec.containers[base].resources.requests.hugepages-1Gi must not be set: Envelope/test '
      'bounds no such resource in requests (listed: cpu, memory, nvidia.com/gpu), got "2Gi" '
      '(envelope: resources)',
      'spec.containers[base].resources.limits.hugepages-1Gi must not be set: Envelope/test '
      'bounds no such resource in limits (listed: cpu, memory, nvidia.com/gpu), got "2Gi" '
      '(envelope: resources)']),
    ("resourceClaims",
     with_spec(resourceClaims=[{"name": "gpu", "resourceClaimTemplateName": "airflow-gpu-one"}]),
     with_spec(resourceClaims=[{"name": "gpu", "resourceClaimTemplateName": "eight-gpus"}]),
     'spec.resourceClaims[gpu].resourceClaimTemplateName must name an allowed '
     'ResourceClaimTemplate (Envelope/test resources.claimTemplates: airflow-gpu-*), got '
     '"eight-gpus" (envelope: resources)'),
    ("containerResources", with_base(resources={"limits": {"cpu": "4"}}),
     with_base(resources={"requests": {"cpu": "4001m"}}),
     'spec.containers[base].resources.requests.cpu must be at most 4 (Envelope/test '
     'perContainer), got "4001m" (envelope: resources)'),
    ("podResources", two_containers("3"), two_containers("3500m"),
     'spec.resources.requests.cpu must total at most 6 for the pod (Envelope/test perPod; '
     'Kubernetes counts the sum of containers and sidecars, or the largest init container if '
     'more), got "7" (envelope: resources)'),
]


@pytest.mark.parametrize(("check_id", "passing", "failing", "message"), CASES,
                         ids=[c[0] for c in CASES])
def test_check(check_id, passing, failing, message):
    assert_envelope_case(check_id, passing, failing, message)


def test_every_check_of_the_section_has_a_case():
    assert {c[0] for c in CASES} == envelope_section_checks("resources")


def test_effective_request_defaults_from_the_limit():
    pod = with_base(resources={"limits": {"memory": "9Gi"}})  # request defaults to 9Gi
    assert judged(pod) == [
        'spec.containers[base].resources.limits.memory must be at most 8Gi (Envelope/test '
        'perContainer), got "9Gi" (envelope: resources)',
        'spec.containers[base].resources.requests.memory must be at most 8Gi (Envelope/test '
        'perContainer), got "9Gi" (envelope: resources)']


def test_pod_totals_follow_kubernetes_init_and_sidecar_rule():
    pod = good_pod()
    pod["spec"]["containers"] = [
        {"name": "a", "resources": {"requests": {"cpu": "1"}}},
        {"name": "b", "resources": {"requests": {"cpu": "2"}}}]
    pod["spec"]["initContainers"] = [
        {"name": "i1", "resources": {"requests": {"cpu": "4"}}},
        {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
        {"name": "i2", "resources": {"requests": {"cpu": "3"}}}]
    # containers 3 + sidecar 0.5 = 3.5; i1 alone 4; i2 runs beside the sidecar: 3.5 -> 4.
    assert pod_totals(pod, "requests")["cpu"] == Decimal(4)
    pod["spec"]["initContainers"][2]["resources"]["requests"]["cpu"] = "5"
    assert pod_totals(pod, "requests")["cpu"] == Decimal("5.5")


def test_pod_level_resources_count_and_are_bounded():
    pod = with_spec(resources={"limits": {"cpu": "7", "hugepages-2Mi": "1Gi"}})
    assert sorted(judged(pod)) == [
        'spec.resources.limits.cpu must total at most 6 for the pod (Envelope/test perPod; '
        'Kubernetes counts the sum of containers and sidecars, or the largest init container '
        'if more), got "7" (envelope: resources)',
        'spec.resources.limits.hugepages-2Mi must not be set: Envelope/test bounds no such '
        'resource in limits (listed: cpu, memory, nvidia.com/gpu), got "1Gi" '
        '(envelope: resources)',
        'spec.resources.requests.cpu must total at most 6 for the pod (Envelope/test perPod; '
        'Kubernetes counts the sum of containers and sidecars, or the largest init container '
        'if more), got "7" (envelope: resources)',
        'spec.resources.requests.hugepages-2Mi must not be set: Envelope/test bounds no such '
        'resource in requests (listed: cpu, memory, nvidia.com/gpu), got "1Gi" '
        '(envelope: resources)']


@pytest.mark.parametrize(("text", "expected"), [
    ("0.1n", Decimal("1e-9")), ("1.0000000001", Decimal("1.000000001")), ("4", Decimal(4)),
    ("1e400", Decimal("1e400")), ("NaN", None), ("Infinity", None), ("-1", None),
    ("sNaN", None), ("4 cores", None), (True, None), (None, None)])
def test_quantities_round_up_as_kubernetes_stores_them(text, expected):
    assert kube_quantity(text) == expected


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-8", "1e400", "4000000001n"])
def test_non_finite_negative_and_huge_quantities_never_pass(value):
    messages = judged(with_base(resources={"requests": {"cpu": value}}))
    assert any(m.startswith("spec.containers[base].resources.requests.cpu must")
               for m in messages), messages


def test_a_limit_sub_nano_over_the_bound_is_over_once_rounded():
    # 4.0000000001 is stored as 4000000001n: over 4, as Kubernetes will count it.
    assert judged(with_base(resources={"requests": {"cpu": "4.0000000001"}})) == [
        'spec.containers[base].resources.requests.cpu must be at most 4 (Envelope/test '
        'perContainer), got "4.0000000001" (envelope: resources)']


def test_an_unreadable_quantity_does_not_hide_the_next_resource_of_the_container():
    pod = with_base(resources={"requests": {"cpu": "lots", "memory": "9Gi"}})
    messages = judged(pod)
    assert ('spec.containers[base].resources.requests.cpu must be a non-negative Kubernetes '
            'quantity, got "lots" (envelope: resources)') in messages
    assert ('spec.containers[base].resources.requests.memory must be at most 8Gi '
            '(Envelope/test perContainer), got "9Gi" (envelope: resources)') in messages


def test_one_container_is_held_to_the_pod_bound_when_no_container_bound_names_it():
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: pod-only}
        spec:
          resources:
            perContainer: {requests: {memory: 8Gi}}
            perPod: {requests: {cpu: "2", memory: 8Gi}}
    """)
    pod = with_base(resources={"requests": {"cpu": "3", "memory": "1Gi"}})
    messages = [v.message for v in check_pod(pod, policies.envelopes[0], POOL)]
    assert ('spec.containers[base].resources.requests.cpu must be at most 2 '
            '(Envelope/pod-only perPod), got "3" (envelope: resources)') in messages


def test_fragment_star_container_is_held_to_the_per_container_bound():
    fragment = {"spec": {"containers": [{"name": "*", "resources": {"limits": {"cpu": "5"}}}]}}
    assert [v.message for v in check_fragment(fragment, ENVELOPE, POOL)] == [
        'spec.containers[*].resources.limits.cpu must be at most 4 (Envelope/test '
        'perContainer), got "5" (envelope: resources)']


@pytest.mark.parametrize(("name", "total", "shown"), [
    ("memory", Decimal(128 * 1024 ** 3), "128Gi"),
    ("memory", Decimal(1536 * 1024 ** 2), "1536Mi"),
    ("memory", Decimal(1024), "1Ki"),
    ("memory", Decimal(1000), "1000"),
    ("memory", Decimal(0), "0"),
    ("memory", Decimal("0.5"), "0.5"),
    ("cpu", Decimal(2048), "2048"),  # cpu is counted in cores, never in Ki
    ("cpu", Decimal("2.5"), "2.5"),
    ("nvidia.com/gpu", Decimal(1024), "1024"),  # a device count, never in Ki
    ("cpu", Decimal("1E+30"), "1E+30"),
    ("cpu", Decimal("1E+29"), "100000000000000000000000000000"),
])
def test_totals_are_shown_as_admins_write_them(name, total, shown) -> None:
    assert shown_total(name, total) == shown
