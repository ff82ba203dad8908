"""The bundled policies agree with themselves: what the mutating hook makes of a real Airflow
pod, the validating hook admits without a word (executor pods), and the bounds for DAG authors,
profiles and pods do not contradict each other. A future edit of policies/ that breaks this
fails here, not in a cluster."""

from __future__ import annotations

import json

import pytest

from tests.support.admission_reviews import SCHEDULER
from tests.support.paths import AIRFLOW_PODS
from webhook.airflow_pods import PodType, identify
from webhook.kube.quantity import parse_quantity
from webhook.mutation.mutate import mutate_pod
from webhook.validation.validate import validate_pod

FIXTURES = sorted(AIRFLOW_PODS.glob("*.json"))
WORKER = "system:serviceaccount:airflow:airflow-worker"
# The one warning left for KPO pods, explained in policies/50-validation.yaml: whether the
# image may run as non-root is the task's to say.
KPO_RULES = ("restricted: runAsNonRoot",)


def mutated(path, policies, username):
    pod = json.loads(path.read_text())
    namespace = pod["metadata"].get("namespace", "")
    result = mutate_pod(pod, policies, namespace, username)
    assert result.allowed, [r.message for r in result.refusals]
    assert result.warnings == ()
    return result.pod, namespace


def test_the_fixtures_cover_both_airflow_versions_with_and_without_pod_override() -> None:
    kinds = {(p.stem.split("-")[0], identify(json.loads(p.read_text())).pod_type,
              "pod-override" in p.stem) for p in FIXTURES}
    for version in ("airflow2", "airflow3"):
        assert (version, PodType.EXECUTOR, False) in kinds
        assert (version, PodType.EXECUTOR, True) in kinds
    assert any(kind is PodType.KPO for _, kind, _ in kinds)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
@pytest.mark.parametrize("username", [None, "trusted"])
def test_every_mutated_fixture_pod_passes_the_bundled_validation(path, username,
                                                                 bundled) -> None:
    kind = identify(json.loads(path.read_text())).pod_type
    if username == "trusted":
        username = SCHEDULER if kind is PodType.EXECUTOR else WORKER
    pod, namespace = mutated(path, bundled, username)
    result = validate_pod(pod, bundled, namespace, username)
    assert result.allowed, result.message
    assert not result.skipped
    assert {"baseline-enforce", "restricted-warn"} <= set(result.policies)
    assert "violations" not in result.audit_annotations  # nothing audited either
    if kind is PodType.EXECUTOR:
        assert result.rules_violated == ()
        assert result.warnings == ()
    else:
        assert kind is PodType.KPO
        assert result.rules_violated == KPO_RULES
        assert result.warnings == tuple(
            f"{c}.securityContext.runAsNonRoot must be true (or set "
            "spec.securityContext.runAsNonRoot=true), got <unset> (restricted: runAsNonRoot)"
            for c in ["spec.containers[base]"])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_mutated_fixture_pod_passes_restricted_except_kpo_run_as_non_root(
        path, bundled) -> None:
    kind = identify(json.loads(path.read_text())).pod_type
    pod, namespace = mutated(path, bundled, None)
    result = validate_pod(pod, bundled, namespace, level="restricted")
    if kind is PodType.EXECUTOR:
        assert result.allowed, result.message
    else:
        assert {v.rule for v in result.violations["enforce"]} == set(KPO_RULES)
        # the safe-for-any-image settings are there
        for container in pod["spec"]["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"].keys() >= {"cpu", "memory"}
            assert "memory" in container["resources"]["limits"]
        assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def _fragments(policies):
    """(policy, container) of every container entry the bundled policies write into pods."""
    for template in policies.templates:
        yield f"PodTemplate/{template.name}", template.template
    for profile in policies.profiles.values():
        yield f"Profile/{profile.name}", profile.template
    for group in policies.task_policies_exact.values():
        for policy in group:
            yield f"TaskPolicy/{policy.name}", policy.template


def test_what_the_policies_write_sits_within_the_envelope(bundled) -> None:
    # A default, profile or task policy the admin ships must never make a pod the Envelope
    # refuses: DAG authors and pods share one list of bounds (policies/45-envelope.yaml).
    [envelope] = bundled.envelopes
    per_container = envelope.resources.per_container
    checked = 0
    for source, fragment in _fragments(bundled):
        for container in fragment.get("spec", {}).get("containers", []):
            for field in ("requests", "limits"):
                for name, value in container.get("resources", {}).get(field, {}).items():
                    bound = per_container[field].get(name)
                    assert bound is not None, (source, field, name)  # unlisted is refused
                    assert parse_quantity(value) <= bound.value, (source, field, name, value)
                    checked += 1
    assert checked >= 10  # the defaults, the sidecar, highmem, small, gpu, the task policy


def test_a_pod_stating_only_a_limit_keeps_request_equal_to_it(bundled) -> None:
    # The template's default request (500m, 1Gi) must not undercut Kubernetes' own default
    # (request = limit): a KPO task with limits only stays Guaranteed.
    pod = json.loads((AIRFLOW_PODS / "airflow3-kpo.json").read_text())
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "4", "memory": "8Gi"}}
    result = mutate_pod(pod, bundled, "data-airflow", WORKER)
    assert result.pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "4", "memory": "8Gi"}}
    # ...while an author's explicit request is applied, not taken back
    pod["metadata"]["annotations"]["airflow-pod-webhook.io/cpu"] = "1"
    result = mutate_pod(pod, bundled, "data-airflow", WORKER)
    assert result.pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "4", "memory": "8Gi"}, "requests": {"cpu": "1"}}
