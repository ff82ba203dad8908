"""The envelope's one registry table and how it runs: every check on the final pod, on an
annotation's fragment, or only on the whole pod; never raising, failing closed
(webhook/envelope/registry.py)."""

from __future__ import annotations

from pathlib import Path

from tests.support.envelope import ENVELOPE, POOL, REQUIRED, TEMPLATES, good_pod
from tests.support.policies import policy_set
from webhook.envelope import check_fragment, check_pod
from webhook.envelope import registry as env


def test_check_pod_passes_the_request_namespace_to_the_sections():
    envelope = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: aff}
        spec: {affinity: {topologyKeys: ["*"]}}
    """).envelopes[0]
    pod = good_pod()
    del pod["metadata"]["namespace"]
    pod["spec"]["affinity"] = {"podAffinity": {REQUIRED: [
        {"labelSelector": {}, "namespaces": ["team-a"], "topologyKey": "x"}]}}
    assert check_pod(pod, envelope, POOL, namespace="team-a") == []
    assert len(check_pod(pod, envelope, POOL, namespace="team-b")) == 1


def test_fragment_checks_judge_only_what_the_fragment_sets():
    assert check_fragment({"spec": {"containers": [
        {"name": "base", "env": [{"name": "A", "value": "1"}]}]}}, ENVELOPE, POOL) == []


GARBAGE = [None, 1, "x", [], {}]


def garbage_pods() -> list[dict]:
    pods = []
    for g in GARBAGE:
        pods += [
            {"spec": g}, {"spec": {"containers": g}},
            {"spec": {"containers": [{"name": "a", "resources": {"limits": g, "requests": g}}]}},
            {"spec": {"nodeSelector": g, "tolerations": [g, {"key": g, "operator": g}],
                      "affinity": {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [
                          g, {"matchExpressions": [g, {"key": g, "values": g}]}]}}}}},
            {"spec": {"serviceAccountName": g, "priorityClassName": g, "schedulerName": g,
                      "runtimeClassName": g, "nodeName": g, "securityContext": g,
                      "containers": [{"name": "a", "securityContext": {"seccompProfile": g}}]}},
            {"spec": {"initContainers": [{"name": "i", "restartPolicy": g,
                                          "resources": {"requests": {"cpu": g}}}]}},
            {"spec": {"resources": {"requests": {"cpu": g, 3: "1"}}}},  # a YAML int key
        ]
    return pods


def test_no_check_raises_on_an_undecodable_pod():
    for pod in garbage_pods():
        crashed = [v for v in check_pod(pod, ENVELOPE, POOL, TEMPLATES)
                   if "readable" in v.requirement]
        assert crashed == [], pod


def test_a_crashing_check_fails_closed_under_its_rule(monkeypatch) -> None:
    def boom(pod, envelope, ctx):
        raise RuntimeError("bug")

    rule, _ = env.ENVELOPE_CHECKS["nodeName"]
    monkeypatch.setitem(env.ENVELOPE_CHECKS, "nodeName", (rule, env.Check(boom)))
    found = env.check_pod({"spec": {}}, ENVELOPE, "example.com/pool")
    crashed = [v for v in found if v.requirement.startswith("must be readable")]
    assert [(v.path, v.requirement, v.value, v.rule) for v in crashed] == [
        ("spec", "must be readable by the envelope checks", '"RuntimeError"', rule)]


def test_every_section_module_has_its_test_file():
    modules = {check.run.__module__ for _, check in env.ENVELOPE_CHECKS.values()}
    assert modules == {f"webhook.envelope.{m}" for m in (
        "resources", "placement", "tolerations", "name_allowlists", "locked_fields",
        "secrets", "volumes", "labels", "affinity", "limits")}
    tests = Path(__file__).parent
    assert [m for m in sorted(modules)
            if not (tests / f"test_envelope_{m.rsplit('.', 1)[1]}.py").exists()] == []


def test_which_checks_skip_the_fragment_or_the_final_pod():
    assert {k for k, (_, c) in env.ENVELOPE_CHECKS.items() if not c.on_pod} == {"pinRemoval"}
    assert {k for k, (_, c) in env.ENVELOPE_CHECKS.items() if not c.on_fragment} == {
        "podResources", "requiredNodePool", "lockedFields", "emptyDirTotals", "limits"}


def test_the_whole_pod_checks_are_those_no_fragment_can_be_judged_by():
    pod = good_pod()
    del pod["spec"]["nodeSelector"]  # requiredNodePool: a whole-pod check
    pod["spec"]["nodeName"] = "node-7"  # nodeName: judged on fragments, so not here
    assert [v.message for v in env.check_whole_pod(pod, ENVELOPE, POOL, TEMPLATES)] == [
        'spec.nodeSelector[example.com/pool] must pin the pod to an allowed node pool (batch, '
        'gpu), by nodeSelector or required node affinity (Envelope/test requireNodePool), got '
        '<unset> (envelope: placement)']


def test_the_whole_pod_checks_hold_the_templates_locks():
    pod = good_pod()
    del pod["spec"]["securityContext"]
    assert [v.message for v in env.check_whole_pod(pod, ENVELOPE, POOL, TEMPLATES)] == [
        'spec.securityContext.seccompProfile must be {"type": "RuntimeDefault"} (locked by '
        'PodTemplate/seccomp spec.securityContext.seccompProfile), got <unset> '
        '(envelope: lockedFields)']


AFFINITY_ONLY = """
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: aff}
    spec: {affinity: {topologyKeys: ["*"]}}
"""


def test_without_a_request_namespace_the_pod_s_own_namespace_counts():
    envelope = policy_set(AFFINITY_ONLY).envelopes[0]
    pod = {"metadata": {"namespace": "team-a"}, "spec": {"affinity": {"podAffinity": {
        REQUIRED: [{"labelSelector": {}, "namespaces": ["team-a"], "topologyKey": "x"}]}}}}
    assert check_pod(pod, envelope, POOL) == []
    assert check_fragment(pod, envelope, POOL) == []
    del pod["metadata"]["namespace"]
    assert check_fragment(pod, envelope, POOL, namespace="team-a") == []
    assert len(check_fragment(pod, envelope, POOL, namespace="team-b")) == 1


def test_a_pod_that_is_no_map_is_judged_as_an_empty_one():
    for pod in (None, "pod", ["spec"]):
        assert check_pod(pod, ENVELOPE, POOL, TEMPLATES) == check_pod(  # type: ignore[arg-type]
            {}, ENVELOPE, POOL, TEMPLATES)
