"""The Envelope's own tests (tests/test_envelope*.py): a test Envelope, a real executor pod
inside it, pods one field away from it, and one check's pass/fail case."""

from __future__ import annotations

from tests.support.pods import airflow_pod
from tests.support.policies import policy_set
from webhook.envelope import check_pod, locks_for
from webhook.envelope.context import EnvelopeContext
from webhook.envelope.registry import ENVELOPE_CHECKS

ENVELOPE_POLICIES = policy_set("""
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
ENVELOPE = ENVELOPE_POLICIES.envelopes[0]
TEMPLATES = ENVELOPE_POLICIES.templates
POOL = "example.com/pool"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def good_pod() -> dict:
    """A real executor pod inside the test envelope: pinned, seccomp locked, small."""
    pod = airflow_pod("airflow2-executor-pod-override")
    pod["spec"]["nodeSelector"] = {POOL: "batch"}
    pod["spec"]["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    return pod


def judged(pod: dict) -> list[str]:
    """The messages of every violation of the test envelope on a final pod."""
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


def node_affinity(*expressions: dict, required: bool = True) -> dict:
    term = {"matchExpressions": list(expressions)}
    node = ({REQUIRED: {"nodeSelectorTerms": [term]}} if required else
            {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": term}]})
    return {"nodeAffinity": node}


def envelope_section_checks(section: str) -> set[str]:
    """The ids of the checks of one envelope section module judged on the final pod."""
    return {check_id for check_id, (_, check) in ENVELOPE_CHECKS.items()
            if check.run.__module__ == f"webhook.envelope.{section}" and check.on_pod}


def assert_envelope_case(check_id: str, passing: dict, failing: dict,
                         message: str | list[str]) -> None:
    """One check of the test envelope: the passing pod passes it and the whole envelope, the
    failing one fails it with exactly these messages, and the whole envelope reports them."""
    _rule, check = ENVELOPE_CHECKS[check_id]
    ctx = EnvelopeContext(POOL, locks_for(TEMPLATES))
    expected = message if isinstance(message, list) else [message]
    assert check.run(passing, ENVELOPE, ctx) == []
    assert [v.message for v in check.run(failing, ENVELOPE, ctx)] == expected
    assert judged(passing) == []
    assert set(expected) <= set(judged(failing))
