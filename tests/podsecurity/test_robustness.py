"""evaluate_pod never raises: unreadable input is read as unset, as the Go types would be."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.oracles import internal_errors
from webhook.validation.podsecurity import CHECKS, LEVELS, evaluate_pod
from webhook.violations import Violation

from .fixtures import minimal_valid_pod

# Field names the checks read, so random garbage lands where it matters.
KEYS = [
    "metadata", "annotations", "spec", "securityContext", "containers", "initContainers",
    "ephemeralContainers", "name", "privileged", "capabilities", "add", "drop", "volumes",
    "hostPath", "ports", "hostPort", "appArmorProfile", "type", "seLinuxOptions", "user", "role",
    "procMount", "seccompProfile", "sysctls", "windowsOptions", "hostProcess", "livenessProbe",
    "readinessProbe", "startupProbe", "lifecycle", "postStart", "preStop", "httpGet",
    "tcpSocket", "host", "allowPrivilegeEscalation", "runAsNonRoot", "runAsUser", "hostUsers",
    "os", "hostNetwork", "hostPID", "hostIPC", "emptyDir", "nfs", "image",
]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=8), st.sampled_from(["ALL", "Unmasked", "Default", "RuntimeDefault",
                                          "windows", "Unconfined", "kernel.foo"]),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), inner,
                        max_size=5),
        # Non-string keys cannot come from JSON, but a caller's dict might carry them.
        st.dictionaries(st.one_of(st.integers(), st.none()), inner, max_size=2),
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pod=JSONISH, level=st.sampled_from(LEVELS),
       version=st.sampled_from(["latest", "v1.0", "v1.19", "v1.24", "v1.25", "v1.34"]))
def test_garbage_never_raises(pod: Any, level: str, version: str) -> None:
    result = evaluate_pod(pod, level, version)
    assert isinstance(result, list)
    assert all(isinstance(v, Violation) for v in result)
    assert internal_errors(result) == []  # no check crashed (a crash reads as a violation)


@settings(max_examples=300, deadline=None)
@given(spec_patch=st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=4),
       container_patch=st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=4))
def test_garbage_grafted_onto_a_valid_pod_never_raises(spec_patch: dict[str, Any],
                                                       container_patch: dict[str, Any]) -> None:
    pod = minimal_valid_pod("restricted", 35)
    pod["spec"].update(spec_patch)
    if isinstance(pod["spec"].get("containers"), list) and pod["spec"]["containers"]:
        first = pod["spec"]["containers"][0]
        if isinstance(first, dict):
            first.update(container_patch)
    for level in LEVELS:
        assert internal_errors(evaluate_pod(pod, level)) == []


@pytest.mark.parametrize("pod", [
    None, [], "x", 5, {}, {"spec": None}, {"spec": "x"}, {"metadata": 5, "spec": []},
    {"spec": {"containers": "x"}},
    {"spec": {"containers": ["x", 5, None]}},
    {"spec": {"containers": [{"name": "a", "securityContext": 5}]}},
    {"spec": {"containers": [{"name": 7, "securityContext": {"capabilities": "x"}}]}},
    {"spec": {"securityContext": {"sysctls": "x"}, "volumes": ["x", {"hostPath": 5}]}},
    {"metadata": {"annotations": {"k": 5, 3: "v"}}, "spec": {"hostUsers": "false"}},
])
def test_named_malformed_pods(pod: Any) -> None:
    for level in LEVELS:
        for version in ("latest", "v1.0", "v1.24"):
            assert internal_errors(evaluate_pod(pod, level, version)) == []


def test_wrong_types_read_as_unset() -> None:
    # "true" is not a JSON boolean: privileged reads as unset, allowPrivilegeEscalation too.
    pod = {"spec": {"containers": [{"name": "a", "securityContext": {
        "privileged": "true", "allowPrivilegeEscalation": "false"}}]}}
    assert evaluate_pod(pod, "baseline") == []
    assert any(v.rule == "restricted: allowPrivilegeEscalation"
               for v in evaluate_pod(pod, "restricted"))
    # A string container cannot be read and is skipped, the readable one is still checked.
    pod = {"spec": {"containers": ["x", {"name": "b", "securityContext": {"privileged": True}}]}}
    assert [v.path for v in evaluate_pod(pod, "baseline")] == [
        "spec.containers[b].securityContext.privileged"]


def test_a_crashing_check_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from webhook.validation.podsecurity import registry

    def boom(meta: dict[str, Any], spec: dict[str, Any]) -> list[Violation]:
        raise RuntimeError("bug")

    patched = [registry.Check(c.id, c.level, [registry.VersionedCheck(v.min_version, boom,
                                                                      v.overrides)
                                              for v in c.versions])
               if c.id == "privileged" else c for c in CHECKS]
    monkeypatch.setattr(registry, "CHECKS", patched)
    registry._table.cache_clear()
    try:
        found = evaluate_pod({"spec": {}}, "baseline")
    finally:
        monkeypatch.undo()
        registry._table.cache_clear()
    assert [(v.path, v.value, v.rule) for v in found] == [
        ("spec", '"RuntimeError"', "baseline: privileged")]
    assert internal_errors(found) == found  # the helper the other tests rely on sees it
