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
    from webhook.validation.envelope import check_pod

    envelope = _bundled_policies().envelopes[0]
    return [v.message for v in check_pod(pod, envelope, "node-pool", (), PodType(pod_type),
                                         "data-airflow") if v.rule == rule]


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
