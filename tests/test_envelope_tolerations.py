"""envelope: placement, tolerations — only allowed taint keys, values and effects; never a
key-less toleration (webhook/envelope/tolerations.py)."""

from __future__ import annotations

import pytest

from tests.conftest import (
    ENVELOPE,
    assert_envelope_case,
    envelope_section_checks,
    judged,
    with_spec,
)
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
