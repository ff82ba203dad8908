"""The locked fields both hooks read (webhook/envelope/context.py): the mutating hook writes
them, the envelope holds the final pod to them."""

from __future__ import annotations

from tests.support.policies import policy_set
from webhook.envelope import Lock, locks_for


def test_locks_carry_the_template_s_value_and_none_where_it_leaves_the_field_unset():
    templates = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: a}
        spec:
          template:
            spec:
              securityContext: {seccompProfile: {type: RuntimeDefault}}
          lockedFields: [spec.securityContext.seccompProfile, spec.hostNetwork]
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: b}
        spec:
          template:
            spec:
              containers: [{name: base, securityContext: {privileged: false}}]
          lockedFields: ["spec.containers[base].securityContext.privileged"]
    """).templates
    assert [(lock.template, lock.value) for lock in locks_for(templates)] == [
        ("a", {"type": "RuntimeDefault"}), ("a", None), ("b", False)]
    assert locks_for(templates)[0] == Lock("a", templates[0].locked[0], {"type": "RuntimeDefault"})
    assert locks_for([]) == ()


def test_a_lock_on_every_container_reads_the_template_s_entry_for_every_container():
    templates = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: star}
        spec:
          template:
            spec:
              containers:
                - {name: base, securityContext: {privileged: true}}
                - {name: "*", securityContext: {privileged: false}}
          lockedFields: ["spec.containers[*].securityContext.privileged"]
    """).templates
    assert [lock.value for lock in locks_for(templates)] == [False]
