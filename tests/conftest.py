"""Shared test inputs: real Airflow pods and policy sets built from YAML text."""

from __future__ import annotations

import copy
import functools
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskClient

from webhook.cli import main
from webhook.envelope import check_pod, locks_for
from webhook.envelope.context import EnvelopeContext
from webhook.envelope.registry import ENVELOPE_CHECKS
from webhook.policy.compile import PolicyDocument, compile_policies
from webhook.policy.load import load_policy_dir
from webhook.policy.model import PolicySet
from webhook.policy.store import PolicyStore
from webhook.serving.app import create_app

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
# Copies of ../shared/fixtures/airflow-pods (pods real Airflow 2.10 and 3.3 code built).
AIRFLOW_PODS = ROOT / "tests" / "fixtures" / "airflow-pods"
SHARED_PODS = ROOT.parent / "shared" / "fixtures" / "airflow-pods"
# The official chart's rendered pod_template_files (copies of ../shared/fixtures/...), and the
# executor pods real Airflow built from them (tools/gen_airflow_built_pods.py).
CHART_TEMPLATES = ROOT / "tests" / "fixtures" / "airflow-chart-1.18"
SHARED_CHART_TEMPLATES = ROOT.parent / "shared" / "fixtures" / "airflow-chart-1.18"


# What kube-apiserver's DefaultTolerationSeconds plugin adds to every pod before any webhook.
DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300})


def airflow_pod(name: str) -> dict:
    """A fresh copy of a real Airflow pod, e.g. `airflow3-executor`."""
    return copy.deepcopy(json.loads((AIRFLOW_PODS / f"{name}.json").read_text()))


@functools.lru_cache(maxsize=1)
def _bundled_policies() -> PolicySet:
    result = load_policy_dir(POLICIES)
    assert result.policy_set is not None, result.errors
    return result.policy_set


def admitted_pod(name: str) -> dict:
    """A real Airflow pod as the validating hook sees it: after the bundled mutation (its
    locked fields applied), e.g. `airflow3-executor`."""
    from webhook.mutation.mutate import mutate_pod

    result = mutate_pod(airflow_pod(name), _bundled_policies(), "airflow")
    assert result.allowed, result.refusals
    return copy.deepcopy(result.pod)


def canonical_json(doc: object) -> str:
    """A JSON document as one canonical text: an oracle for "the same JSON value" that owes
    nothing to the code under test (and tells `true` from `1`, unlike Python's `==`)."""
    return json.dumps(doc, sort_keys=True, allow_nan=False)


def internal_errors(violations: object) -> list:
    """The violations that stand for a crash inside the webhook, not for the pod: the Pod
    Security registry, the Airflow rules and validate_pod each turn an exception into one
    (fail closed), so "a list came back" proves nothing; "none of these" does."""
    return [v for v in violations  # type: ignore[attr-defined]
            if v.requirement.startswith("must be readable by") or v.rule == "webhook: internal"]


def policy_set(text: str, revision: str = "test") -> PolicySet:
    """Compile policy YAML written inline in a test; fails loudly on any error."""
    docs = [PolicyDocument("inline.yaml", i, body)
            for i, body in enumerate(yaml.safe_load_all(textwrap.dedent(text))) if body]
    result, errors = compile_policies(docs, revision)
    assert not errors, "\n".join(map(str, errors))
    assert result is not None
    return result


@pytest.fixture(scope="session")
def bundled() -> PolicySet:
    result = load_policy_dir(POLICIES)
    assert result.policy_set is not None, result.errors
    return result.policy_set


def bundled_envelope_messages(pod: dict, pod_type: str, rule: str) -> list[str]:
    """The bundled Envelope's violations of one rule on a pod of this type, as messages."""
    from webhook.airflow_pods import PodType

    envelope = _bundled_policies().envelopes[0]
    return [v.message for v in check_pod(pod, envelope, "node-pool", (), PodType(pod_type),
                                         "data-airflow") if v.rule == rule]


# ---- the Envelope's own tests (tests/test_envelope*.py): a test Envelope, a real executor pod
# inside it, and pods one field away from it.

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


# --- the CLI next to the server (tests/test_cli_*.py) -------------------------------------------

# One of the bundled Settings' Airflow accounts, and a pod it might write without Airflow's labels.
WORKER = "system:serviceaccount:airflow:airflow-worker"
UNLABELLED = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "no-labels", "namespace": "airflow"},
              "spec": {"hostPID": True,
                       "containers": [{"name": "c", "image": "busybox:1.36",
                                       "securityContext": {"privileged": True}}]}}


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """`airflow-pod-webhook ARGV` run in this process: (exit code, stdout, stderr)."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        code = main(argv)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def webhook_client() -> FlaskClient:
    """The server's app over the bundled policies: what the offline commands must agree with."""
    store = PolicyStore(POLICIES)
    store.reload_if_changed()
    return create_app(store).test_client()
