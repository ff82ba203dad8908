"""Envelope: its YAML becomes frozen bounds, quantities parsed once; bad bounds are errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from webhook.airflow_pods import PodType
from webhook.policy.model import (
    AffinityRules,
    Bound,
    ClaimRule,
    Envelope,
    LabelRule,
    LabelRules,
    LimitRules,
    Match,
    NameAllowlist,
    Placement,
    SecretRules,
    SecretUse,
    Source,
    TemplateLabels,
    TolerationRule,
    VolumeRules,
)

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def envelope(spec: str, name: str = "e") -> str:
    return API + f"kind: Envelope\nmetadata: {{name: {name}}}\nspec:\n{spec}"


EVERYTHING = """\
  mode: warn
  match: {podTypes: [kpo]}
  resources:
    claimTemplates: [gpu-*]
    perContainer:
      requests: {cpu: 500m, memory: 1Gi}
      limits: {cpu: 2}
    perPod:
      limits: {memory: 4Gi}
  placement:
    nodePools: [default]
    requireNodePool: true
    otherNodeLabels: [kubernetes.io/arch]
    tolerations: [{key: spot, values: ['yes'], effects: [NoSchedule]}, {key: gpu}]
  priorityClassNames: {allowed: ['airflow-*']}
  serviceAccountNames: {allowed: [default], forbidden: ['*scheduler']}
  schedulerNames: {allowed: [default-scheduler]}
  runtimeClassNames: {allowed: []}
  schedulingGates: {allowed: [gate]}
  verifyLockedFields: false
  secrets:
    allowed: [team-*]
    forbidden: [team-admin]
    templateUses:
      - {secret: airflow-metadata, podTypes: [executor], containers: [base], env: [CONN],
         volumes: [meta]}
      - {secret: airflow-fernet-key, podTypes: [executor, kpo]}
  volumes:
    types: [emptyDir, configMap]
    emptyDir: {maxSizeLimit: 1Gi}
    persistentVolumeClaims: [{claimName: data-*, readOnly: true}, {claimName: scratch}]
    ephemeral: {storageClasses: [fast], maxStorage: 10Gi}
    csiDrivers: [secrets-store.csi.k8s.io]
  labels:
    forbidden: [{key: team, values: [admin]}, {key: 'kubernetes.io/*'}]
    templateLabels: [{podTypes: [executor], labels: {tier: b, app: a}}]
  affinity: {topologyKeys: [zone], allowRequired: false}
  limits: {required: [memory]}
"""


def test_every_section_compiles_to_frozen_rules(compiled) -> None:
    env = compiled(envelope(EVERYTHING)).envelopes[0]
    assert env.resources is not None
    assert {k: dict(v) for k, v in env.resources.per_container.items()} == {
        "requests": {"cpu": Bound(Decimal("0.5"), "500m"), "memory": Bound(Decimal(2**30), "1Gi")},
        "limits": {"cpu": Bound(Decimal(2), "2")}}
    assert {k: dict(v) for k, v in env.resources.per_pod.items()} == {
        "requests": {}, "limits": {"memory": Bound(Decimal(4 * 2**30), "4Gi")}}
    assert env.resources.claim_templates == ("gpu-*",)
    assert env == Envelope(
        name="e", match=Match(frozenset({PodType.KPO})), mode="warn",
        resources=env.resources,
        placement=Placement(("default",), True, ("kubernetes.io/arch",),
                            (TolerationRule("spot", ("yes",), ("NoSchedule",)),
                             TolerationRule("gpu", (), ()))),
        priority_class_names=NameAllowlist(("airflow-*",), ()),
        service_account_names=NameAllowlist(("default",), ("*scheduler",)),
        scheduler_names=NameAllowlist(("default-scheduler",), ()),
        runtime_class_names=NameAllowlist((), ()),
        verify_locked_fields=False, source=Source("p.yaml", 0),
        scheduling_gates=NameAllowlist(("gate",), ()),
        secrets=SecretRules(NameAllowlist(("team-*",), ("team-admin",)), (
            SecretUse("airflow-metadata", frozenset({PodType.EXECUTOR}), ("base",), ("CONN",),
                      ("meta",)),
            SecretUse("airflow-fernet-key", frozenset({PodType.EXECUTOR, PodType.KPO})))),
        volumes=VolumeRules(("emptyDir", "configMap"), Bound(Decimal(2**30), "1Gi"),
                            (ClaimRule("data-*", True), ClaimRule("scratch", False)), ("fast",),
                            Bound(Decimal(10 * 2**30), "10Gi"), ("secrets-store.csi.k8s.io",)),
        labels=LabelRules((LabelRule("team", ("admin",)), LabelRule("kubernetes.io/*", ())),
                          (TemplateLabels(frozenset({PodType.EXECUTOR}),
                                          (("app", "a"), ("tier", "b"))),)),
        affinity=AffinityRules(("zone",), False),
        limits=LimitRules(("memory",)))


def test_a_section_left_out_is_not_checked(compiled) -> None:
    policy = compiled(envelope("  match: {}\n", "b") + "---\n" + envelope(
        "  secrets: {}\n  volumes: {types: []}\n  affinity: {topologyKeys: []}\n"
        "  resources: {}\n  placement: {}\n", "a"))
    bare, defaults = policy.envelopes[1], policy.envelopes[0]
    assert [e.name for e in policy.envelopes] == ["a", "b"]
    assert bare == Envelope(name="b", match=Match(), mode="enforce", resources=None,
                            placement=None, priority_class_names=None,
                            service_account_names=None, scheduler_names=None,
                            runtime_class_names=None, verify_locked_fields=True,
                            source=Source("p.yaml", 0))
    assert defaults.secrets == SecretRules(NameAllowlist(("*",), ()), ())
    assert defaults.volumes == VolumeRules((), None, (), (), None, ())
    assert defaults.affinity == AffinityRules((), True)
    assert defaults.placement == Placement(None, False, (), ())
    assert defaults.resources is not None
    assert {k: dict(v) for k, v in defaults.resources.per_container.items()} == {
        "requests": {}, "limits": {}}
    assert {k: dict(v) for k, v in defaults.resources.per_pod.items()} == {
        "requests": {}, "limits": {}}


def test_no_node_pools_kept_apart_from_an_empty_list(compiled) -> None:
    env = compiled(envelope("  placement: {nodePools: []}\n")).envelopes[0]
    assert env.placement is not None and env.placement.node_pools == ()


@pytest.mark.parametrize(("pools", "where"), [("", "5:3"), ("nodePools: [], ", "5:26")])
def test_a_required_node_pool_needs_the_pools(compile_yaml, pools: str, where: str) -> None:
    _, errors = compile_yaml(envelope(f"  placement: {{{pools}requireNodePool: true}}\n"))
    assert errors == [
        f"p.yaml:{where}: document 1 (Envelope/e): spec.placement.nodePools: requireNodePool "
        "needs the list of nodePools a pod may be pinned to"]


def test_bounds_that_are_not_quantities_or_negative_are_errors(compile_yaml) -> None:
    _, errors = compile_yaml(envelope(
        "  resources:\n    perContainer: {requests: {cpu: lots, memory: -1Gi}}\n"
        "    perPod: {limits: {cpu: '-2'}}\n"
        "  volumes:\n    types: [emptyDir]\n    emptyDir: {maxSizeLimit: -1Gi}\n"
        "    ephemeral: {maxStorage: huge}\n"))
    assert errors == [
        "p.yaml:6:36: document 1 (Envelope/e): spec.resources.perContainer.requests[cpu]: bad "
        "value 'lots': is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)",
        "p.yaml:6:50: document 1 (Envelope/e): spec.resources.perContainer.requests[memory]: "
        "bad value '-1Gi': is not a finite, non-negative quantity: '-1Gi'",
        "p.yaml:7:28: document 1 (Envelope/e): spec.resources.perPod.limits[cpu]: bad value "
        "'-2': is not a finite, non-negative quantity: '-2'",
        "p.yaml:10:30: document 1 (Envelope/e): spec.volumes.emptyDir.maxSizeLimit: bad value "
        "'-1Gi': is not a finite, non-negative quantity: '-1Gi'",
        "p.yaml:11:29: document 1 (Envelope/e): spec.volumes.ephemeral.maxStorage: bad value "
        "'huge': is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)"]


def test_zero_is_a_bound(compiled) -> None:
    env = compiled(envelope("  resources: {perPod: {limits: {cpu: 0}}}\n"
                            "  volumes: {types: [], emptyDir: {maxSizeLimit: 0}}\n")).envelopes[0]
    assert env.resources is not None
    assert dict(env.resources.per_pod["limits"]) == {"cpu": Bound(Decimal(0), "0")}
    assert env.volumes is not None and env.volumes.empty_dir_max == Bound(Decimal(0), "0")


def test_labels_without_template_labels_and_a_checked_match(compile_yaml, compiled) -> None:
    env = compiled(envelope("  labels: {forbidden: [{key: team}]}\n")).envelopes[0]
    assert env.labels == LabelRules((LabelRule("team", ()),), ())
    _, errors = compile_yaml(envelope("  match: {podTypes: [other]}\n"))
    assert errors == [
        "p.yaml:5:3: document 1 (Envelope/e): spec.match.labelSelector: podTypes 'other' needs "
        "a labelSelector: foreign pods are never matched by namespace alone"]
