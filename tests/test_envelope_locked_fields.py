"""envelope: lockedFields — the PodTemplates' locked fields hold on the final pod; a container
may not override a locked pod-level setting; a Windows pod is never held to a Linux-only lock
(webhook/envelope/locked_fields.py)."""

from __future__ import annotations

import pytest

from tests.support.envelope import (
    POOL,
    assert_envelope_case,
    envelope_section_checks,
    good_pod,
    judged,
    with_base,
)
from tests.support.policies import policy_set
from webhook.envelope import check_pod

# Each check: (check id, a pod that passes it, a pod that fails it, the exact message).
CASES = [
    ("lockedFields", with_base(securityContext={"seccompProfile": {"type": "RuntimeDefault"}}),
     with_base(securityContext={"seccompProfile": {"type": "Unconfined"}}),
     'spec.containers[base].securityContext.seccompProfile must be {"type": "RuntimeDefault"}, '
     'as the locked pod-level setting (locked by PodTemplate/seccomp '
     'spec.securityContext.seccompProfile), got {"type":"Unconfined"} '
     '(envelope: lockedFields)'),
]


@pytest.mark.parametrize(("check_id", "passing", "failing", "message"), CASES,
                         ids=[c[0] for c in CASES])
def test_check(check_id, passing, failing, message):
    assert_envelope_case(check_id, passing, failing, message)


def test_every_check_of_the_section_has_a_case():
    assert {c[0] for c in CASES} == envelope_section_checks("locked_fields")


def test_locked_field_missing_on_the_final_pod_is_a_violation():
    pod = good_pod()
    del pod["spec"]["securityContext"]  # the mutation never ran (or another webhook undid it)
    assert judged(pod) == [
        'spec.securityContext.seccompProfile must be {"type": "RuntimeDefault"} (locked by '
        'PodTemplate/seccomp spec.securityContext.seccompProfile), got <unset> '
        '(envelope: lockedFields)']


def test_a_windows_pod_is_never_held_to_a_linux_only_lock():
    """Kubernetes forbids seccompProfile on spec.os.name=windows, and the mutation takes the
    locked default back there: the envelope does not require it either."""
    pod = good_pod()
    pod["spec"]["securityContext"] = {}
    pod["spec"]["os"] = {"name": "windows"}
    assert judged(pod) == []
    pod["spec"]["os"] = {"name": "linux"}
    assert judged(pod) == [
        'spec.securityContext.seccompProfile must be {"type": "RuntimeDefault"} (locked by '
        'PodTemplate/seccomp spec.securityContext.seccompProfile), got <unset> '
        '(envelope: lockedFields)']


def test_a_windows_pod_keeps_the_lock_s_other_fields():
    envelope, templates = _whole_context_lock()
    pod = good_pod()
    pod["spec"]["os"] = {"name": "windows"}
    pod["spec"]["securityContext"] = {"runAsNonRoot": True}
    pod["spec"]["containers"][0]["securityContext"] = {"runAsNonRoot": False}
    assert [v.message for v in check_pod(pod, envelope, POOL, templates)] == [
        'spec.containers[base].securityContext.runAsNonRoot must be true, as the locked '
        'pod-level setting (locked by PodTemplate/whole spec.securityContext), got false '
        '(envelope: lockedFields)']
    pod["spec"]["containers"][0]["securityContext"] = {}
    assert check_pod(pod, envelope, POOL, templates) == []
    pod["spec"]["securityContext"] = {}
    assert [v.message for v in check_pod(pod, envelope, POOL, templates)] == [
        'spec.securityContext must be {"runAsNonRoot": true} (locked by PodTemplate/whole '
        'spec.securityContext), got {} (envelope: lockedFields)']


def test_windows_locks_on_containers_and_on_other_fields_still_hold():
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: side}
        spec:
          template:
            spec:
              securityContext: {seccompProfile: {type: RuntimeDefault}, runAsNonRoot: true}
              containers:
                - name: base
                  securityContext: {runAsNonRoot: true, capabilities: {drop: [ALL]}}
          lockedFields:
            - spec.securityContext.seccompProfile
            - spec.securityContext.runAsNonRoot
            - spec.containers[base].securityContext
            - spec.containers[base].securityContext.capabilities
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: locks}
        spec: {}
    """)
    envelope, templates = policies.envelopes[0], policies.templates
    pod = good_pod()
    pod["spec"]["os"] = {"name": "windows"}
    pod["spec"]["securityContext"] = {"runAsNonRoot": True}
    pod["spec"]["containers"][0]["securityContext"] = {"runAsNonRoot": True}
    assert check_pod(pod, envelope, POOL, templates) == []
    # the container's Linux-only fields do not count either way
    pod["spec"]["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    assert check_pod(pod, envelope, POOL, templates) == []
    pod["spec"]["containers"][0]["securityContext"] = {}
    pod["spec"]["securityContext"] = {}
    assert [v.message for v in check_pod(pod, envelope, POOL, templates)] == [
        'spec.containers[base].securityContext must be {"runAsNonRoot": true} (locked by '
        'PodTemplate/side spec.containers[base].securityContext), got {} '
        '(envelope: lockedFields)',
        'spec.securityContext.runAsNonRoot must be true (locked by PodTemplate/side '
        'spec.securityContext.runAsNonRoot), got <unset> (envelope: lockedFields)']
    # on Linux, the whole locked value holds, Linux-only fields included
    pod["spec"]["os"] = {"name": "linux"}
    pod["spec"]["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"},
                                      "runAsNonRoot": True}
    pod["spec"]["containers"][0]["securityContext"] = {"runAsNonRoot": True,
                                                       "capabilities": {"drop": ["ALL"]}}
    assert check_pod(pod, envelope, POOL, templates) == []


def _whole_context_lock():
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: whole}
        spec:
          template:
            spec:
              securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
          lockedFields: [spec.securityContext]
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: locks}
        spec: {}
    """)
    return policies.envelopes[0], policies.templates


UNSET_AND_SORTED = """
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: PodTemplate
    metadata: {name: t}
    spec:
      template:
        spec:
          containers:
            - name: base
              securityContext:
                seLinuxOptions: {user: u, role: r, level: s0}
      lockedFields:
        - spec.hostNetwork
        - spec.securityContext.runAsUser
        - spec.containers[base].securityContext.seLinuxOptions
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: locks}
    spec: {}
"""


def test_a_lock_on_an_unset_field_asks_for_it_unset_and_values_show_with_sorted_keys():
    policies = policy_set(UNSET_AND_SORTED)
    envelope, templates = policies.envelopes[0], policies.templates
    pod = {"spec": {"hostNetwork": True, "containers": [{"name": "base"}]}}
    assert [v.message for v in check_pod(pod, envelope, POOL, templates)] == [
        'spec.containers[base].securityContext.seLinuxOptions must be {"level": "s0", '
        '"role": "r", "user": "u"} (locked by PodTemplate/t '
        'spec.containers[base].securityContext.seLinuxOptions), got <unset> '
        '(envelope: lockedFields)',
        'spec.hostNetwork must be unset (locked by PodTemplate/t spec.hostNetwork), got true '
        '(envelope: lockedFields)']


def test_a_pod_level_lock_to_unset_does_not_judge_what_a_container_sets():
    policies = policy_set(UNSET_AND_SORTED)
    envelope, templates = policies.envelopes[0], policies.templates
    pod = {"spec": {"containers": [{"name": "base", "securityContext": {
        "runAsUser": 0, "seLinuxOptions": {"user": "u", "role": "r", "level": "s0"}}}]}}
    assert check_pod(pod, envelope, POOL, templates) == []


def test_a_pod_without_spec_is_held_to_its_locks():
    policies = policy_set(UNSET_AND_SORTED)
    envelope, templates = policies.envelopes[0], policies.templates
    assert check_pod({"metadata": {}}, envelope, POOL, templates) == []
    locked = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: net}
        spec:
          template: {spec: {hostNetwork: false}}
          lockedFields: [spec.hostNetwork]
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: locks}
        spec: {}
    """)
    assert [v.message for v in check_pod({"metadata": {}}, locked.envelopes[0], POOL,
                                         locked.templates)] == [
        'spec.hostNetwork must be false (locked by PodTemplate/net spec.hostNetwork), got '
        '<unset> (envelope: lockedFields)']
