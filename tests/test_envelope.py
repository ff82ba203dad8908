"""Each envelope check, passing and failing, on real Airflow pods (the podsecurity model:
one check, one small function, one registry entry, a pass and a fail fixture per check)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from tests.support.pods import airflow_pod
from tests.support.policies import policy_set
from webhook.policy.compile import PolicyDocument, compile_policies
from webhook.policy.schema import SPEC_SCHEMAS
from webhook.validation.envelope import (
    ENVELOPE_CHECKS,
    check_fragment,
    check_pod,
    kube_quantity,
    pod_totals,
)

POLICIES = policy_set("""
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Settings
    metadata: {name: settings}
    spec: {nodePoolLabel: example.com/pool}
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: PodTemplate
    metadata: {name: seccomp}
    spec:
      template:
        spec:
          securityContext: {seccompProfile: {type: RuntimeDefault}}
      lockedFields: [spec.securityContext.seccompProfile]
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: test}
    spec:
      resources:
        perContainer:
          requests: {cpu: "4", memory: 8Gi, nvidia.com/gpu: "1"}
          limits: {cpu: "4", memory: 8Gi, nvidia.com/gpu: "1"}
        perPod:
          requests: {cpu: "6", memory: 12Gi, nvidia.com/gpu: "1"}
          limits: {cpu: "6", memory: 12Gi, nvidia.com/gpu: "1"}
        claimTemplates: ["airflow-gpu-*"]
      placement:
        nodePools: [batch, gpu]
        requireNodePool: true
        otherNodeLabels: [kubernetes.io/arch]
        tolerations:
          - {key: dedicated, values: [airflow], effects: [NoSchedule]}
          - {key: nvidia.com/gpu}
      priorityClassNames: {allowed: ["airflow-*"]}
      serviceAccountNames: {allowed: ["*"], forbidden: ["*scheduler*"]}
      schedulerNames: {allowed: [default-scheduler]}
      runtimeClassNames: {allowed: [gvisor]}
      schedulingGates: {allowed: ["example.com/*"]}
""")
ENVELOPE = POLICIES.envelopes[0]
TEMPLATES = POLICIES.templates
POOL = "example.com/pool"
AFFINITY = "requiredDuringSchedulingIgnoredDuringExecution"


def good_pod() -> dict:
    """A real executor pod inside the test envelope: pinned, seccomp locked, small."""
    pod = airflow_pod("airflow2-executor-pod-override")
    pod["spec"]["nodeSelector"] = {POOL: "batch"}
    pod["spec"]["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    return pod


def judged(pod: dict) -> list[str]:
    return [v.message for v in check_pod(pod, ENVELOPE, POOL, TEMPLATES)]


def with_spec(**fields) -> dict:
    pod = good_pod()
    pod["spec"].update(fields)
    return pod


def with_base(**fields) -> dict:
    pod = good_pod()
    pod["spec"]["containers"][0].update(fields)
    return pod


def two_containers(cpu: str) -> dict:
    pod = good_pod()
    base = pod["spec"]["containers"][0]
    base["resources"] = {"requests": {"cpu": cpu, "memory": "1Gi"}}
    pod["spec"]["containers"].append({"name": "side", "image": "busybox:1.36",
                                      "resources": {"requests": {"cpu": cpu}}})
    return pod


def init_container(resources: dict, **extra) -> dict:
    pod = good_pod()
    pod["spec"]["initContainers"] = [{"name": "prep", "image": "busybox:1.36",
                                      "resources": resources, **extra}]
    return pod


def affinity(*expressions: dict, required: bool = True) -> dict:
    term = {"matchExpressions": list(expressions)}
    node = ({AFFINITY: {"nodeSelectorTerms": [term]}} if required else
            {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": term}]})
    return {"nodeAffinity": node}


# Every check: (check id, a pod that passes it, a pod that fails it, the exact message).
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
    ("nodeName", good_pod(), with_spec(nodeName="node-7"),
     'spec.nodeName must not be set: it bypasses the scheduler and every taint (pick a node '
     'pool instead), got "node-7" (envelope: placement)'),
    ("nodeSelector", with_spec(nodeSelector={POOL: "gpu", "kubernetes.io/arch": "arm64"}),
     with_spec(nodeSelector={POOL: "system"}),
     'spec.nodeSelector[example.com/pool] must be one of the allowed node pools (batch, gpu), '
     'got "system" (envelope: placement)'),
    ("nodeAffinity", with_spec(affinity=affinity(
        {"key": POOL, "operator": "In", "values": ["gpu"]})),
     with_spec(affinity=affinity({"key": POOL, "operator": "NotIn", "values": ["batch"]},
                                 required=False)),
     'spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference'
     '.matchExpressions[0] must use operator In with allowed node pools (batch, gpu): NotIn on '
     'example.com/pool admits other pools, got {"key":"example.com/pool","operator":"NotIn",'
     '"values":["batch"]} (envelope: placement)'),
    ("requiredNodePool", with_spec(nodeSelector={}, affinity=affinity(
        {"key": POOL, "operator": "In", "values": ["batch", "gpu"]})),
     with_spec(nodeSelector={}),
     'spec.nodeSelector[example.com/pool] must pin the pod to an allowed node pool (batch, '
     'gpu), by nodeSelector or required node affinity (Envelope/test requireNodePool), got '
     '<unset> (envelope: placement)'),
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
    ("lockedFields", with_base(securityContext={"seccompProfile": {"type": "RuntimeDefault"}}),
     with_base(securityContext={"seccompProfile": {"type": "Unconfined"}}),
     'spec.containers[base].securityContext.seccompProfile must be {"type": "RuntimeDefault"}, '
     'as the locked pod-level setting (locked by PodTemplate/seccomp '
     'spec.securityContext.seccompProfile), got {"type":"Unconfined"} '
     '(envelope: lockedFields)'),
]
POD_CHECKS = [c for c in CASES if ENVELOPE_CHECKS[c[0]][1].on_pod]


def test_every_check_has_a_case():
    fragment_only = {k for k, (_, c) in ENVELOPE_CHECKS.items() if not c.on_pod}
    # the sections in envelope_sections/ have a test file each (tests/test_envelope_<x>.py)
    sections = {k for k, (_, c) in ENVELOPE_CHECKS.items()
                if ".envelope_sections." in c.run.__module__}
    assert {c[0] for c in CASES} | fragment_only | sections == set(ENVELOPE_CHECKS)
    assert fragment_only == {"pinRemoval"}  # tested with the fragments below


def test_the_good_pod_is_inside_the_envelope():
    assert judged(good_pod()) == []


@pytest.mark.parametrize(("check_id", "passing", "failing", "message"), POD_CHECKS,
                         ids=[c[0] for c in POD_CHECKS])
def test_check(check_id, passing, failing, message):
    _rule, check = ENVELOPE_CHECKS[check_id]
    from webhook.validation.envelope import EnvelopeContext, locks_for

    ctx = EnvelopeContext(POOL, locks_for(TEMPLATES))
    expected = message if isinstance(message, list) else [message]
    assert check.run(passing, ENVELOPE, ctx) == []
    assert [v.message for v in check.run(failing, ENVELOPE, ctx)] == expected
    assert judged(passing) == []
    assert set(expected) <= set(judged(failing))


def test_envelope_rule_names_are_what_exemptions_name():
    rules = {rule for rule, _ in ENVELOPE_CHECKS.values()}
    assert rules == {"envelope: resources", "envelope: placement",
                     "envelope: priorityClassNames", "envelope: serviceAccountNames",
                     "envelope: schedulerNames", "envelope: runtimeClassNames",
                     "envelope: schedulingGates", "envelope: lockedFields",
                     "envelope: secrets", "envelope: volumes",
                     "envelope: labels", "envelope: affinity", "envelope: limits"}
    from webhook.policy.names import RULE_FAMILIES
    assert set(RULE_FAMILIES["envelope"].checks()) == {r.split(": ")[1] for r in rules}


# ---- resources as Kubernetes counts them


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


# ---- placement details


def test_key_less_toleration_is_named_tolerate_all():
    assert judged(with_spec(tolerations=[{"operator": "Exists"}])) == [
        'spec.tolerations[0] must name a taint key: a key-less toleration tolerates every '
        'taint, got {"operator":"Exists"} (envelope: placement)']


@pytest.mark.parametrize("expression", [
    {"key": POOL, "operator": "Exists"},
    {"key": POOL, "operator": "In", "values": ["batch", "system"]},
    {"key": POOL, "operator": "DoesNotExist"},
    {"key": POOL, "operator": "Gt", "values": ["1"]},
    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-7"]}])
def test_affinity_escapes_are_refused(expression):
    messages = judged(with_spec(affinity=affinity(expression)))
    assert any(m.startswith("spec.affinity.nodeAffinity.requiredDuringScheduling"
                            "IgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]")
               for m in messages), messages


def test_match_fields_pin_to_a_node_like_node_name():
    pod = with_spec(affinity={"nodeAffinity": {AFFINITY: {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}})
    assert judged(pod) == [
        'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.'
        'nodeSelectorTerms[0].matchFields[0] must not select nodes by field (it pins the pod to '
        'named nodes, as nodeName does), got {"key":"metadata.name","operator":"In",'
        '"values":["n1"]} (envelope: placement)']


def test_an_unpinned_affinity_term_ored_with_a_pinned_one_does_not_pin():
    pod = with_spec(nodeSelector={}, affinity={"nodeAffinity": {AFFINITY: {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": POOL, "operator": "In", "values": ["gpu"]}]},
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In",
                               "values": ["amd64"]}]}]}}})
    assert [m for m in judged(pod) if "must pin the pod" in m]


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


def test_check_pod_passes_the_request_namespace_to_the_sections():
    envelope = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: aff}
        spec: {affinity: {topologyKeys: ["*"]}}
    """).envelopes[0]
    pod = good_pod()
    del pod["metadata"]["namespace"]
    pod["spec"]["affinity"] = {"podAffinity": {AFFINITY: [
        {"labelSelector": {}, "namespaces": ["team-a"], "topologyKey": "x"}]}}
    assert check_pod(pod, envelope, POOL, namespace="team-a") == []
    assert len(check_pod(pod, envelope, POOL, namespace="team-b")) == 1


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


# ---- the same checks on an annotation's fragment


def test_fragment_checks_judge_only_what_the_fragment_sets():
    assert check_fragment({"spec": {"containers": [
        {"name": "base", "env": [{"name": "A", "value": "1"}]}]}}, ENVELOPE, POOL) == []


def test_fragment_pin_removal_is_refused_when_a_pool_is_required():
    assert [v.message for v in check_fragment({"spec": {"nodeSelector": None}},
                                              ENVELOPE, POOL)] == [
        'spec.nodeSelector must not be removed: the pod must stay pinned to a node pool '
        '(Envelope/test requireNodePool), got <unset> (envelope: placement)']
    assert [v.message for v in check_fragment({"spec": {"nodeSelector": {POOL: None}}},
                                              ENVELOPE, POOL)] == [
        'spec.nodeSelector[example.com/pool] must not be removed: the pod must stay pinned to '
        'a node pool (Envelope/test requireNodePool), got <unset> (envelope: placement)']


def test_fragment_star_container_is_held_to_the_per_container_bound():
    fragment = {"spec": {"containers": [{"name": "*", "resources": {"limits": {"cpu": "5"}}}]}}
    assert [v.message for v in check_fragment(fragment, ENVELOPE, POOL)] == [
        'spec.containers[*].resources.limits.cpu must be at most 4 (Envelope/test '
        'perContainer), got "5" (envelope: resources)']


# ---- the schema is strict, and the compile step the one place YAML becomes objects


def compile_errors(spec_text: str) -> list[str]:
    docs = [PolicyDocument("e.yaml", 0, {
        "apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": "Envelope",
        "metadata": {"name": "e"}, "spec": yaml.safe_load(spec_text)})]
    result, errors = compile_policies(docs, "r")
    assert result is None
    return [str(e) for e in errors]


@pytest.mark.parametrize(("spec", "expected"), [
    ("{resources: {perContainer: {limits: {cpu: lots}}}}",
     "e.yaml: document 1 (Envelope/e): spec.resources.perContainer.limits[cpu]: bad value "
     "'lots': is not a Kubernetes quantity"),
    ("{resources: {perContainer: {limits: {cpu: NaN}}}}",
     "spec.resources.perContainer.limits[cpu]: bad value 'NaN': is not a Kubernetes quantity"),
    ("{resources: {perContainer: {limits: {cpu: '-1'}}}}",
     "spec.resources.perContainer.limits[cpu]: is not a finite, non-negative quantity"),
    ("{resources: {perPod: {limits: {'nvidia com/gpu': '1'}}}}",
     "spec.resources.perPod.limits.nvidia com/gpu: bad value 'nvidia com/gpu': is not a valid "
     "extended resource name"),
    ("{resources: {perPod: {limit: {cpu: '1'}}}}",
     "spec.resources.perPod.limit: bad value 'limit': is not a field here (fields: requests, "
     "limits); did you mean 'limits'?"),
    ("{resources: {unlisted: allow}}",
     "spec.resources.unlisted: bad value 'allow': must be one of refuse"),
    ("{placement: {nodePool: [a]}}",
     "spec.placement.nodePool: bad value 'nodePool': is not a field here"),
    ("{placement: {requireNodePool: true}}",
     "spec.placement.nodePools: requireNodePool needs the list of nodePools"),
    ("{placement: {tolerations: [{key: ''}]}}",
     "spec.placement.tolerations[0].key: should be non-empty"),
    ("{serviceAccountNames: {forbidden: [x]}}",
     "spec.serviceAccountNames: 'allowed' is a required property"),
    ("{schedulerNames: {allowed: [x], forbidden: [y]}}",
     "spec.schedulerNames.forbidden: bad value 'forbidden': is not a field here (fields: "
     "allowed)"),
    ("{mode: deny}", "spec.mode: bad value 'deny': must be one of enforce, warn, audit"),
    # issue 20's sections
    ("{volumes: {types: [hostpath]}}",
     "spec.volumes.types[0]: bad value 'hostpath': must be one of awsElasticBlockStore"),
    ("{volumes: {types: [emptyDir], emptyDir: {maxSizeLimit: lots}}}",
     "spec.volumes.emptyDir.maxSizeLimit: bad value 'lots': is not a Kubernetes quantity"),
    ("{volumes: {types: [ephemeral], ephemeral: {maxStorage: '-1'}}}",
     "spec.volumes.ephemeral.maxStorage: is not a finite, non-negative quantity: '-1'"),
    ("{volumes: {types: [persistentVolumeClaim], persistentVolumeClaims: "
     "[{claimName: x, readonly: true}]}}",
     "spec.volumes.persistentVolumeClaims[0].readonly: bad value 'readonly': is not a field "
     "here (fields: claimName, readOnly); did you mean 'readOnly'?"),
    ("{limits: {required: ['bad name!']}}",
     "spec.limits.required[0]: bad value 'bad name!': is not a Kubernetes resource name"),
    ("{labels: {forbidden: [{key: 'bad key!'}]}}",
     "spec.labels.forbidden[0].key: bad value 'bad key!': is not a valid label key"),
    ("{labels: {forbidden: [{key: tier}], templateLabels: [{podTypes: [other], labels: {}}]}}",
     "spec.labels.templateLabels[0].podTypes[0]: bad value 'other': must be one of executor, "
     "kpo"),
    ("{secrets: {forbidden: ['Bad_Name']}}",
     "spec.secrets.forbidden[0]: bad value 'Bad_Name': is not a Kubernetes object name"),
    ("{secrets: {templateUses: [{secret: x}]}}",
     "spec.secrets.templateUses[0]: 'podTypes' is a required property"),
    ("{affinity: {topologyKeys: ['no good/key/x']}}",
     "spec.affinity.topologyKeys[0]: bad value 'no good/key/x': a label key's prefix must be "
     "a DNS subdomain"),
    ("{affinity: {}}", "spec.affinity: 'topologyKeys' is a required property"),
])
def test_envelope_schema_is_strict(spec, expected):
    errors = compile_errors(spec)
    assert any(expected in e for e in errors), errors


def test_compile_freezes_bounds():
    bounds = ENVELOPE.resources
    assert bounds is not None
    assert bounds.per_container["limits"]["cpu"].value == Decimal(4)
    assert bounds.per_container["limits"]["cpu"].text == "4"
    with pytest.raises(TypeError):
        bounds.per_container["limits"]["cpu"] = None  # type: ignore[index]
    assert SPEC_SCHEMAS["Envelope"]["additionalProperties"] is False


# ---- never raises: a pod Kubernetes could not even decode is judged, not crashed on

GARBAGE = [None, 1, "x", [], {}]


def garbage_pods() -> list[dict]:
    pods = []
    for g in GARBAGE:
        pods += [
            {"spec": g}, {"spec": {"containers": g}},
            {"spec": {"containers": [{"name": "a", "resources": {"limits": g, "requests": g}}]}},
            {"spec": {"nodeSelector": g, "tolerations": [g, {"key": g, "operator": g}],
                      "affinity": {"nodeAffinity": {AFFINITY: {"nodeSelectorTerms": [
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
