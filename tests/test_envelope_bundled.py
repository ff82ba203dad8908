"""The bundled policies enforce the envelope on Airflow pods, and stock Airflow pods (as real
Airflow 2.10 and 3.3 built them) still pass it, bare and with every bundled profile."""

from __future__ import annotations

import json

import jsonpatch
import pytest

from tests.support.paths import AIRFLOW_PODS, CHART_TEMPLATES
from tests.support.pods import airflow_pod
from webhook.mutation.mutate import mutate_pod
from webhook.validation.validate import validate_pod

NS = "data-airflow"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
FIXTURES = sorted(p.stem for p in AIRFLOW_PODS.glob("*.json"))
PROFILES_ANNOTATION = "airflow-pod-webhook.io/profiles"


def test_the_fixture_folder_is_not_empty():
    assert len(FIXTURES) >= 6  # airflow 2 and 3 executor pods, with pod_override, KPO pods


def admitted(pod: dict, policies) -> tuple[dict, object]:
    mutation = mutate_pod(pod, policies, NS, SCHEDULER)
    assert mutation.allowed, [r.message for r in mutation.refusals]
    final = jsonpatch.apply_patch(pod, mutation.patch)
    return final, validate_pod(final, policies, NS, SCHEDULER)


def test_the_bundled_envelope_covers_airflow_pods(bundled):
    [envelope] = bundled.envelopes
    for name in FIXTURES:
        pod = airflow_pod(name)
        _, result = admitted(pod, bundled)
        assert "Envelope/airflow" in result.policies, name
    assert envelope.mode == "enforce"


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_stock_airflow_pod_passes_after_the_bundled_mutation(bundled, fixture):
    _, result = admitted(airflow_pod(fixture), bundled)
    assert result.allowed, result.message
    assert not [v for vs in result.violations.values() for v in vs
                if v.rule.startswith("envelope:")]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_without_the_mutation_the_stock_pod_is_denied_by_the_locked_fields(bundled, fixture):
    """The safety net: a pod the mutating hook never touched (failurePolicy Ignore, a crash)
    lacks the cluster's locked seccomp profile, and the validating hook says so."""
    result = validate_pod(airflow_pod(fixture), bundled, NS, SCHEDULER)
    assert not result.allowed
    # ... and, where a container states no memory limit, lacks the limit the template gives
    assert {v.rule for v in result.violations["enforce"]} in (
        {"envelope: lockedFields"}, {"envelope: lockedFields", "envelope: limits"})


@pytest.mark.parametrize("profile", ["small", "highmem", "gpu", "spot", "highmem,spot",
                                     "gpu,spot"])
@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_bundled_profile_on_a_stock_pod_passes(bundled, fixture, profile):
    assert set(profile.split(",")) <= set(bundled.profiles)
    pod = airflow_pod(fixture)
    pod["metadata"].setdefault("annotations", {})[PROFILES_ANNOTATION] = profile
    final, result = admitted(pod, bundled)
    assert result.allowed, result.message
    assert not [v for vs in result.violations.values() for v in vs
                if v.rule.startswith("envelope:")]
    last_pin = {"small": None, "highmem": "highmem", "gpu": "gpu", "spot": "spot"}[
        profile.split(",")[-1]]
    if last_pin:
        assert final["spec"]["nodeSelector"]["node-pool"] == last_pin


def test_the_bundled_profiles_are_all_tested():
    assert set(bundled_profile_names()) == {"small", "highmem", "gpu", "spot"}


def bundled_profile_names() -> list[str]:
    from tests.support.paths import POLICIES

    text = (POLICIES / "20-profiles.yaml").read_text()
    return [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.startswith("  name:")]


def test_fixture_pods_are_real_airflow_pods():
    for name in FIXTURES:
        pod = json.loads((AIRFLOW_PODS / f"{name}.json").read_text())
        labels = pod["metadata"]["labels"]
        assert "kubernetes_executor" in labels or "kubernetes_pod_operator" in labels, name


def test_a_windows_kpo_pod_is_admitted(bundled):
    """The mutation takes back the locked seccomp profile Windows forbids, and the envelope's
    lockedFields agree: the pod is admitted (it was always denied before)."""
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["os"] = {"name": "windows"}
    pod["spec"]["nodeSelector"] = {"kubernetes.io/os": "windows"}
    final, result = admitted(pod, bundled)
    assert "seccompProfile" not in final["spec"].get("securityContext", {})
    assert result.allowed, result.message
    assert not result.violations["enforce"]


# ---- pods real Airflow built (tools/gen_airflow_built_pods.py) -------------------------------

BUILT = AIRFLOW_PODS.parent / "airflow-built"
CHART_PODS = sorted(p.stem for p in BUILT.glob("chart-*.json"))
# The one warning stock pods keep: a KPO pod's container may run as root (10-pod-template.yaml:
# not defaulted, many images need root).
KPO_RUN_AS_ROOT = {("spec.containers[base].securityContext.runAsNonRoot",
                    "restricted: runAsNonRoot")}


def built_pod(name: str) -> dict:
    return json.loads((BUILT / f"{name}.json").read_text())


def test_every_chart_template_is_built_with_and_without_a_pod_override():
    assert len(CHART_PODS) == 10
    assert {n.removesuffix("-pod-override") for n in CHART_PODS} == {
        "chart-" + p.name.removesuffix(".pod_template_file.yaml")
        for p in CHART_TEMPLATES.glob("*.yaml")}


@pytest.mark.parametrize("name", CHART_PODS)
def test_chart_built_executor_pods_are_admitted_with_no_warning(bundled, name):
    pod = built_pod(name)
    final, result = admitted(pod, bundled)
    assert result.allowed, result.message
    found = {(v.path, v.rule) for vs in result.violations.values() for v in vs}
    assert found == set()
    # the template's own references to Airflow's Secrets, kept where the template has them
    names = {e["valueFrom"]["secretKeyRef"]["name"] for e in final["spec"]["containers"][0]["env"]
             if "valueFrom" in e}
    release = "prod" if "release-prod" in name else "airflow"
    assert f"{release}-metadata" in names and f"{release}-fernet-key" in names


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_fixture_pod_gains_no_warning(bundled, fixture):
    _, result = admitted(airflow_pod(fixture), bundled)
    found = {(v.path, v.rule) for vs in result.violations.values() for v in vs}
    assert found == (KPO_RUN_AS_ROOT if "kpo" in fixture else set())


@pytest.mark.parametrize(("name", "rule", "path"), [
    ("attack-executor-jwt-volume", "envelope: secrets", "spec.volumes[jwt].secret.secretName"),
    ("attack-kpo-env-from-metadata", "envelope: secrets",
     "spec.containers[base].envFrom[0].secretRef.name"),
    ("attack-kpo-api-server-labels", "envelope: labels", "metadata.labels.component"),
    ("attack-kpo-anti-affinity", "envelope: affinity",
     "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
     ".topologyKey"),
])
def test_attacks_real_airflow_built_are_denied_naming_the_rule(bundled, name, rule, path):
    _, result = admitted(built_pod(name), bundled)
    assert not result.allowed
    assert path in {v.path for v in result.violations["enforce"] if v.rule == rule}
    assert f"({rule})" in result.message
