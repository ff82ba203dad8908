"""Policy sets for tests: the bundled policies (loaded once a session) and YAML written inline."""

from __future__ import annotations

import functools
import textwrap

import yaml

from tests.support.paths import POLICIES
from webhook.airflow_pods import PodType
from webhook.envelope import check_pod
from webhook.policy.compile import PolicyDocument, compile_policies
from webhook.policy.load import load_policy_dir
from webhook.policy.model import PolicySet


@functools.lru_cache(maxsize=1)
def bundled_policies() -> PolicySet:
    """The bundled policies (policies/), loaded once: the `bundled` fixture, and what helpers
    that run outside a fixture (module-level hypothesis strategies, admitted_pod) read."""
    result = load_policy_dir(POLICIES)
    assert result.policy_set is not None, result.errors
    return result.policy_set


def policy_set(text: str, revision: str = "test") -> PolicySet:
    """Compile policy YAML written inline in a test; fails loudly on any error."""
    docs = [PolicyDocument("inline.yaml", i, body)
            for i, body in enumerate(yaml.safe_load_all(textwrap.dedent(text))) if body]
    result, errors = compile_policies(docs, revision)
    assert not errors, "\n".join(map(str, errors))
    assert result is not None
    return result


def bundled_envelope_messages(pod: dict, pod_type: str, rule: str) -> list[str]:
    """The bundled Envelope's violations of one rule on a pod of this type, as messages."""
    envelope = bundled_policies().envelopes[0]
    return [v.message for v in check_pod(pod, envelope, "node-pool", (), PodType(pod_type),
                                         "data-airflow") if v.rule == rule]
