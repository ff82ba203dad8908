"""What a DAG author's override annotations may do, on both sides of every bound.

Each case is a real Airflow pod with annotations in, and either the exact refusal out or the
field that landed on the pod. Pinned by mutation testing (docs/testing.md): the accepting
side matters as much as the refusing one, or a check that refuses everything would pass.
"""

from __future__ import annotations

import json

import jsonpatch
import pytest

from tests.support.pods import airflow_pod
from tests.support.policies import policy_set
from webhook.mutation.mutate import mutate_pod
from webhook.mutation.overrides import MAX_OVERRIDE_BYTES, base_container_name

P = "airflow-pod-webhook.io/"
POLICIES = policy_set("""
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: PodTemplate
    metadata: {name: secure}
    spec:
      template:
        spec:
          securityContext: {seccompProfile: {type: RuntimeDefault}}
      lockedFields: [spec.securityContext.seccompProfile]
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Profile
    metadata: {name: small}
    spec: {template: {spec: {priorityClassName: low}}}
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Profile
    metadata: {name: big}
    spec: {template: {spec: {priorityClassName: high}}}
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: OverridePolicy
    metadata: {name: limited}
    spec:
      allowedFields:
        - metadata.labels
        - metadata.annotations
        - spec.containers[*].resources
        - spec.containers[base].env
        - spec.nodeSelector
        - spec.tolerations
      allowedProfiles: [small]
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: bounds}
    spec:
      mode: enforce
      match: {podTypes: [executor, kpo]}
      resources:
        perContainer:
          requests: {cpu: "2", memory: 4Gi, nvidia.com/gpu: "2", ephemeral-storage: 20Gi}
          limits: {cpu: "2", memory: 4Gi, nvidia.com/gpu: "2", ephemeral-storage: 20Gi}
      placement:
        nodePools: [a, b]
        tolerations:
          - {key: dedicated, values: [airflow], effects: [NoSchedule]}
          - {key: spot}
""")


def run(annotations: dict, name: str = "airflow3-executor"):
    pod = airflow_pod(name)
    pod["metadata"]["annotations"].update(annotations)
    result = mutate_pod(pod, POLICIES, "data-airflow")
    assert jsonpatch.apply_patch(pod, result.patch) == result.pod
    return result


def refusals(annotations: dict, name: str = "airflow3-executor") -> list[str]:
    result = run(annotations, name)
    assert not result.allowed
    return [r.message for r in result.refusals]


def base(result) -> dict:
    return next(c for c in result.pod["spec"]["containers"] if c["name"] == "base")


def override(fragment: dict) -> dict:
    return {P + "pod-override": json.dumps(fragment)}


# ---- the short annotations, accepted


@pytest.mark.parametrize(("annotation", "value", "requests", "limits"), [
    ("cpu", "500m", {"cpu": "500m"}, {}),
    ("cpu-limit", "1500m", {}, {"cpu": "1500m"}),
    ("memory", "1Gi", {"memory": "1Gi"}, {"memory": "1Gi"}),
    ("memory-limit", "2Gi", {}, {"memory": "2Gi"}),
    ("ephemeral-storage", "10Gi", {"ephemeral-storage": "10Gi"}, {"ephemeral-storage": "10Gi"}),
    ("gpu", "2", {}, {"nvidia.com/gpu": "2"}),
])
def test_each_resource_annotation_lands_on_the_base_container(annotation, value, requests,
                                                              limits) -> None:
    result = run({P + annotation: f" {value} "})  # surrounding blanks are not part of it
    assert result.allowed, result.refusals
    resources = base(result).get("resources", {})
    for field, wanted in (("requests", requests), ("limits", limits)):
        for resource, quantity in wanted.items():
            assert resources[field][resource] == quantity


def test_memory_limit_wins_over_memory() -> None:
    resources = base(run({P + "memory": "1Gi", P + "memory-limit": "3Gi"}))["resources"]
    assert resources["requests"]["memory"] == "1Gi" and resources["limits"]["memory"] == "3Gi"


def test_node_pool_sets_the_settings_label() -> None:
    result = run({P + "node-pool": "b"})
    assert result.allowed and result.pod["spec"]["nodeSelector"]["node-pool"] == "b"


@pytest.mark.parametrize(("spec", "name"), [
    ({"containers": [{"name": "main"}, {"name": "base"}]}, "base"),
    ({"containers": ["junk", {"name": "main"}, {"name": "side"}]}, "main"),
    ({"containers": [{"name": 5}, {"name": "main"}]}, "base"),
    ({"containers": []}, "base"),
    ({"containers": "x"}, "base"),
    ("x", "base"),
])
def test_the_base_container_is_base_else_the_first_named_one(spec, name) -> None:
    assert base_container_name({"spec": spec}) == name


# ---- bounds, both sides


@pytest.mark.parametrize(("annotations", "refused"), [
    ({P + "cpu": "2"}, None),
    ({P + "cpu": "2001m"}, "annotation airflow-pod-webhook.io/cpu: "
     "spec.containers[base].resources.requests.cpu: must be at most 2 (Envelope/bounds "
     'perContainer), got "2001m" (envelope: resources)'),
    ({P + "memory": "4Gi"}, None),
    ({P + "memory-limit": "4097Mi"}, "annotation airflow-pod-webhook.io/memory-limit: "
     "spec.containers[base].resources.limits.memory: must be at most 4Gi (Envelope/bounds "
     'perContainer), got "4097Mi" (envelope: resources)'),
    ({P + "ephemeral-storage": "20Gi"}, None),
    ({P + "gpu": "2"}, None),
    ({P + "gpu": "3"}, "annotation airflow-pod-webhook.io/gpu: "
     "spec.containers[base].resources.limits[nvidia.com/gpu]: must be at most 2 "
     '(Envelope/bounds perContainer), got "3" (envelope: resources)'),
    ({P + "cpu": "0", P + "memory": "0"}, None),  # zero is a quantity, not a malformed one
    ({P + "node-pool": "a"}, None),
    ({P + "node-pool": "c"}, "annotation airflow-pod-webhook.io/node-pool: "
     "spec.nodeSelector.node-pool: must be one of the allowed node pools (a, b), got \"c\" "
     "(envelope: placement)"),
    (override({"spec": {"nodeSelector": {"zone": "x"}}}),
     "annotation airflow-pod-webhook.io/pod-override: spec.nodeSelector.zone: must select "
     "nodes only by node-pool or an allowed label (none), not zone, got \"x\" "
     "(envelope: placement)"),
])
def test_resource_and_node_selector_bounds(annotations, refused) -> None:
    result = run(annotations)
    assert [r.message for r in result.refusals] == ([refused] if refused else [])


@pytest.mark.parametrize(("toleration", "allowed"), [
    ({"key": "dedicated", "operator": "Equal", "value": "airflow", "effect": "NoSchedule"},
     True),
    ({"key": "dedicated", "operator": "Equal", "value": "prod", "effect": "NoSchedule"}, False),
    ({"key": "dedicated", "operator": "Equal", "value": "airflow", "effect": "NoExecute"},
     False),
    ({"key": "spot", "operator": "Exists"}, True),
    ({"key": "spot", "operator": "Equal", "value": "any", "effect": "NoExecute"}, True),
    ({"key": "prod", "operator": "Exists"}, False),
    ({"operator": "Exists"}, False),  # tolerates every taint
])
def test_tolerations_both_sides(toleration, allowed) -> None:
    result = run(override({"spec": {"tolerations": [
        {"key": "spot", "operator": "Exists"}, toleration]}}))
    if allowed:
        assert result.allowed, result.refusals
        assert toleration in result.pod["spec"]["tolerations"]
    else:
        shown = json.dumps(toleration, sort_keys=True, separators=(",", ":"))
        reason = ("must name a taint key: a key-less toleration tolerates every taint"
                  if "key" not in toleration else
                  "must be an allowed toleration (dedicated=airflow:NoSchedule, spot)")
        assert [r.message for r in result.refusals] == [
            f"annotation airflow-pod-webhook.io/pod-override: spec.tolerations[1]: {reason}, "
            f"got {shown} (envelope: placement)"]


def test_profiles_both_sides() -> None:
    assert run({P + "profiles": "small"}).pod["spec"]["priorityClassName"] == "low"
    assert refusals({P + "profiles": "small, big"}) == [
        "annotation profiles: profile 'big' is not allowed "
        "(OverridePolicy/limited allowedProfiles)"]


# ---- the allowlist walk


def test_an_empty_map_does_not_end_the_allowlist_walk() -> None:
    assert refusals(override({"metadata": {"labels": {}}, "spec": {"hostNetwork": True}})) == [
        "annotation airflow-pod-webhook.io/pod-override: spec.hostNetwork: may not be "
        "overridden (OverridePolicy/limited allowedFields)"]


def test_every_refused_leaf_is_named_and_allowed_leaves_are_not() -> None:
    fragment = {"metadata": {"labels": {"team": "x"}, "name": "other"},
                "spec": {"containers": [{"name": "base", "env": [{"name": "A", "value": "1"}],
                                         "image": "evil"},
                                        {"name": "side", "env": [{"name": "B"}]}],
                         "securityContext": {"seccompProfile": {"type": "Unconfined"},
                                             "runAsUser": 0}}}
    assert refusals(override(fragment)) == [
        "annotation airflow-pod-webhook.io/pod-override: metadata.name: is set by Airflow and "
        "kube-apiserver (Airflow-owned field)",
        "annotation airflow-pod-webhook.io/pod-override: spec.containers[base].image: may not "
        "be overridden (OverridePolicy/limited allowedFields)",
        "annotation airflow-pod-webhook.io/pod-override: spec.containers[side].env[B]: may not "
        "be overridden (OverridePolicy/limited allowedFields)",
        "annotation airflow-pod-webhook.io/pod-override: spec.securityContext.runAsUser: may "
        "not be overridden (OverridePolicy/limited allowedFields)",
        "annotation airflow-pod-webhook.io/pod-override: spec.securityContext.seccompProfile"
        ".type: is locked by the cluster template (spec.securityContext.seccompProfile) "
        "(PodTemplate/secure lockedFields)",
    ]


def test_a_whole_locked_subtree_is_refused_too() -> None:
    assert refusals(override({"spec": {"securityContext": {"seccompProfile": None}}})) == [
        "annotation airflow-pod-webhook.io/pod-override: spec.securityContext.seccompProfile: "
        "is locked by the cluster template (spec.securityContext.seccompProfile) "
        "(PodTemplate/secure lockedFields)"]


@pytest.mark.parametrize(("fragment", "reason"), [
    ({"metadata": {"labels": {"airflow-worker": "7"}}},
     "metadata.labels.airflow-worker: Airflow owns this key (it selects and adopts pods by "
     "it) (Airflow-owned field)"),
    ({"metadata": {"namespace": "kube-system"}},
     "metadata.namespace: is set by Airflow and kube-apiserver (Airflow-owned field)"),
    ({"metadata": {"annotations": {"dag_id": "other_dag"}}},
     "metadata.annotations.dag_id: Airflow owns this key (it selects and adopts pods by it) "
     "(Airflow-owned field)"),
    ({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}},
     "metadata.annotations[kubernetes.io/config.mirror]: marks a kubelet mirror pod, which the "
     "webhooks never check (Airflow-owned field)"),
    ({"spec": {"containers": [{"name": "base", "command": ["sh"]}]}},
     "spec.containers[base].command: Airflow sets the task's command; changing it breaks the "
     "task (Airflow-owned field)"),
])
def test_airflow_owned_fields(fragment, reason) -> None:
    assert refusals(override(fragment)) == [
        f"annotation airflow-pod-webhook.io/pod-override: {reason}"]


def test_a_label_airflow_does_not_own_is_allowed() -> None:
    result = run(override({"metadata": {"labels": {"team": "x"}}}))
    assert result.allowed and result.pod["metadata"]["labels"]["team"] == "x"


# ---- malformed annotations


@pytest.mark.parametrize(("annotations", "message"), [
    ({P + "node-pool": " "}, "annotation airflow-pod-webhook.io/node-pool: must name a node "
     "pool (annotations)"),
    ({P + "cpu": "-1"}, "annotation airflow-pod-webhook.io/cpu: '-1' is not a Kubernetes "
     "quantity (e.g. 500m, 2, 4Gi) (annotations)"),
    ({P + "profiles": "tiny"}, "annotation airflow-pod-webhook.io/profiles: unknown profile "
     "'tiny' (known: big, small) (profiles)"),
    ({P + "pod-override": "[1, 2]"}, None),
])
def test_malformed_short_annotations(annotations, message) -> None:
    result = run(annotations)
    assert result.malformed
    if message:
        assert [r.message for r in result.refusals] == [message]


def test_an_exact_80_character_value_is_quoted_whole_and_81_briefly() -> None:
    for size, shown in ((78, "'" + "p" * 78 + "'"), (79, "'" + "p" * 78 + "…")):
        [message] = refusals({P + "profiles": "p" * size})
        assert f"unknown profile {shown} (known: big, small)" in message


def test_a_pod_override_of_exactly_the_size_limit_is_read() -> None:
    def padded(size: int) -> str:
        text = json.dumps({"metadata": {"annotations": {"note": ""}}})
        return text.replace('""', '"' + "n" * (size - len(text)) + '"')

    assert len(padded(MAX_OVERRIDE_BYTES).encode()) == MAX_OVERRIDE_BYTES
    assert run({P + "pod-override": padded(MAX_OVERRIDE_BYTES)}).allowed
    assert refusals({P + "pod-override": padded(MAX_OVERRIDE_BYTES + 1)}) == [
        "annotation airflow-pod-webhook.io/pod-override: is larger than 65536 bytes "
        "(annotations)"]


def test_api_version_and_kind_of_a_serialised_pod_are_ignored() -> None:
    result = run(override({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"labels": {"team": "x"}}}))
    assert result.allowed and result.pod["metadata"]["labels"]["team"] == "x"


@pytest.mark.parametrize(("annotations", "messages"), [
    ({P + "pod-override": "{bad"}, [
        "annotation airflow-pod-webhook.io/pod-override: is neither JSON nor YAML: while "
        "parsing a flow mapping (annotations)"]),
    ({P + "pod-override": "a: &x 1\nb: *x"}, [
        "annotation airflow-pod-webhook.io/pod-override: is neither JSON nor YAML: YAML "
        "aliases are not allowed in annotations (annotations)"]),
    (override({"spec": {"activeDeadlineSeconds": "soon"}}), [
        "annotation airflow-pod-webhook.io/pod-override: spec.activeDeadlineSeconds: must be "
        "an integer, got string (Pod schema)"]),
    ({P + "pod-override": '{"spec": {"activeDeadlineSeconds": NaN}}'}, [
        "annotation airflow-pod-webhook.io/pod-override: is not valid JSON: NaN is not a JSON "
        "number (annotations)"]),
    ({P + "cpu": 7}, ["annotation airflow-pod-webhook.io/cpu: must be a string (annotations)"]),
    ({P + "bogus": 5, P + "cpu": 7}, [
        "annotation airflow-pod-webhook.io/bogus: must be a string (annotations)",
        "annotation airflow-pod-webhook.io/bogus: unknown annotation; known ones are "
        "airflow-pod-webhook.io/pod-override, airflow-pod-webhook.io/profiles, "
        "airflow-pod-webhook.io/cpu, airflow-pod-webhook.io/cpu-limit, "
        "airflow-pod-webhook.io/memory, airflow-pod-webhook.io/memory-limit, "
        "airflow-pod-webhook.io/ephemeral-storage, airflow-pod-webhook.io/gpu, "
        "airflow-pod-webhook.io/node-pool (annotations)",
        "annotation airflow-pod-webhook.io/cpu: must be a string (annotations)"]),
])
def test_malformed_annotations_exact_messages(annotations, messages) -> None:
    result = run(annotations)
    assert result.malformed and [r.message for r in result.refusals] == messages


@pytest.mark.parametrize(("fragment", "message"), [
    # A path that ends at a container entry with only a name is judged, never crashed on.
    ({"spec": {"containers": [{"name": "base"}]}},
     "spec.containers[base]: may not be overridden (OverridePolicy/limited allowedFields)"),
])
def test_short_paths_are_judged(fragment, message) -> None:
    # (`tolerations: null` removes them: no taint is tolerated, which the envelope allows.)
    assert refusals(override(fragment)) == [
        f"annotation airflow-pod-webhook.io/pod-override: {message}"]


@pytest.mark.parametrize("fragment", [
    {"metadata": None},
    {"metadata": {"labels": None}},
    {"metadata": {"annotations": None}},
])
def test_nulling_what_holds_airflows_keys_is_refused(fragment) -> None:
    field = ".".join(["metadata", *fragment["metadata"]]) if fragment["metadata"] else "metadata"
    assert refusals(override(fragment)) == [
        f"annotation airflow-pod-webhook.io/pod-override: {field}: may not be removed or "
        "replaced: it holds Airflow's labels and annotations; set single keys instead "
        "(Airflow-owned field)"]


def test_with_no_profiles_the_message_says_none_are_defined() -> None:
    bare = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: OverridePolicy
        metadata: {name: open}
        spec: {allowedFields: [metadata.labels]}
    """)
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][P + "profiles"] = "gpu"
    assert [r.message for r in mutate_pod(pod, bare, "data-airflow").refusals] == [
        "annotation airflow-pod-webhook.io/profiles: unknown profile 'gpu' "
        "(known: none are defined) (profiles)"]


def test_without_an_override_policy_every_annotation_is_refused() -> None:
    profiles_only = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Profile
        metadata: {name: small}
        spec: {template: {spec: {priorityClassName: low}}}
    """)
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"].update({P + "cpu": "1", P + "memory": "1Gi"})
    assert [r.message for r in mutate_pod(pod, profiles_only, "data-airflow").refusals] == [
        f"annotation airflow-pod-webhook.io/{name}: no OverridePolicy allows DAG-author "
        "overrides in namespace 'data-airflow' (OverridePolicy)" for name in ("cpu", "memory")]


def test_every_toleration_rule_for_a_key_is_tried() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: OverridePolicy
        metadata: {name: tolerant}
        spec: {allowedFields: [spec.tolerations]}
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: tolerant}
        spec:
          mode: enforce
          match: {podTypes: [executor, kpo]}
          placement:
            nodePools: [a]
            tolerations:
              - {key: dedicated, values: [airflow], effects: [NoSchedule]}
              - {key: dedicated, values: [batch]}
              - {key: dedicated, values: [airflow], effects: [NoExecute]}
    """)
    for toleration in ({"key": "dedicated", "operator": "Equal", "value": "batch",
                        "effect": "NoSchedule"},
                       {"key": "dedicated", "operator": "Equal", "value": "airflow",
                        "effect": "NoExecute"}):
        pod = airflow_pod("airflow3-executor")
        pod["metadata"]["annotations"].update(override({"spec": {"tolerations": [toleration]}}))
        result = mutate_pod(pod, policies, "data-airflow")
        assert result.allowed, result.refusals


def test_a_refused_value_up_to_120_characters_is_quoted_whole() -> None:
    toleration = {"key": "k" * 80, "operator": "Exists"}
    shown = json.dumps(toleration, separators=(",", ":"))
    assert 80 < len(shown) <= 120
    assert refusals(override({"spec": {"tolerations": [toleration]}})) == [
        "annotation airflow-pod-webhook.io/pod-override: spec.tolerations[0]: must be an "
        f"allowed toleration (dedicated=airflow:NoSchedule, spot), got {shown} "
        "(envelope: placement)"]


def test_a_fraction_of_a_gpu_is_refused_a_fraction_of_a_cpu_is_not() -> None:
    assert refusals({P + "gpu": "0.5"}) == [
        "annotation airflow-pod-webhook.io/gpu: '0.5' is not a Kubernetes quantity "
        "(e.g. 500m, 2, 4Gi) (annotations)"]
    assert run({P + "cpu": "0.5"}).allowed and run({P + "gpu": "1.0"}).allowed
