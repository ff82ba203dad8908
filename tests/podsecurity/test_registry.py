"""Registry shape, version selection and overrides, as upstream registry.go does them."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.validation.podsecurity import CHECKS, LEVELS, MAX_VERSION, check_ids, evaluate_pod

from .fixtures import minimal_valid_pod, tweak

UPSTREAM_IDS = {
    "baseline": {
        "hostNamespaces", "privileged", "capabilities_baseline", "hostPathVolumes", "hostPorts",
        "appArmorProfile", "seLinuxOptions", "procMount", "seccompProfile_baseline", "sysctls",
        "windowsHostProcess", "hostProbesAndHostLifecycle",
    },
    "restricted": {
        "restrictedVolumes", "allowPrivilegeEscalation", "runAsNonRoot", "runAsUser",
        "seccompProfile_restricted", "capabilities_restricted", "procMount_restricted",
    },
}


def test_registry_matches_upstream_ids_and_levels() -> None:
    assert {lvl: {c.id for c in CHECKS if c.level == lvl} for lvl in LEVELS} == UPSTREAM_IDS
    assert len({c.id for c in CHECKS}) == len(CHECKS)
    assert MAX_VERSION == (1, 35)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_registry_is_valid_as_upstream_validate_checks(check: Any) -> None:
    minimums = [v.min_version for v in check.versions]
    assert minimums and minimums == sorted(set(minimums)), "strictly increasing versions"
    baseline_ids = UPSTREAM_IDS["baseline"]
    for revision in check.versions:
        if revision.overrides:
            assert check.level == "restricted"
            assert set(revision.overrides) <= baseline_ids
        assert revision.func({}, {}) == []  # uniform (meta, spec) signature, empty pod is fine


@pytest.mark.parametrize(("version", "overridden"), [
    ("v1.0", {"hostPathVolumes"}),
    ("v1.19", {"hostPathVolumes", "seccompProfile_baseline"}),
    ("v1.22", {"hostPathVolumes", "seccompProfile_baseline", "capabilities_baseline"}),
    ("v1.34", {"hostPathVolumes", "seccompProfile_baseline", "capabilities_baseline"}),
    ("latest", {"hostPathVolumes", "seccompProfile_baseline", "capabilities_baseline",
                "procMount"}),
])
def test_restricted_is_baseline_minus_overrides_plus_restricted(version: str,
                                                                overridden: set[str]) -> None:
    baseline, restricted = set(check_ids("baseline", version)), set(check_ids("restricted",
                                                                             version))
    assert baseline - restricted == overridden
    assert restricted - baseline <= UPSTREAM_IDS["restricted"]


@pytest.mark.parametrize(("check", "first"), [
    ("allowPrivilegeEscalation", 8), ("seccompProfile_restricted", 19),
    ("capabilities_restricted", 22), ("runAsUser", 23), ("hostProbesAndHostLifecycle", 34),
    ("procMount_restricted", 35),
])
def test_checks_start_at_their_minimum_version(check: str, first: int) -> None:
    assert check not in check_ids("restricted", f"v1.{first - 1}")
    assert check in check_ids("restricted", f"v1.{first}")


def test_latest_and_future_versions_clamp_to_newest() -> None:
    assert check_ids("restricted", "latest") == check_ids("restricted", "v1.35")
    assert check_ids("restricted", "v1.99") == check_ids("restricted", "v1.35")


@pytest.mark.parametrize("bad", ["1.29", "v2.0", "v1.01", "", "v1.-1", "Latest"])
def test_bad_version_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid policy version"):
        evaluate_pod({}, "baseline", bad)


def test_bad_level_is_rejected() -> None:
    with pytest.raises(ValueError) as raised:
        evaluate_pod({}, "strict")
    assert str(raised.value) == "invalid policy level 'strict': want one of baseline, restricted"


def test_a_version_that_is_not_a_string_is_a_bad_version() -> None:
    with pytest.raises(ValueError, match="invalid policy version 135"):
        evaluate_pod({}, "baseline", 135)  # type: ignore[arg-type]


def test_a_shared_memo_gives_the_same_verdicts_as_fresh_runs() -> None:
    pod = {"spec": {"hostNetwork": True, "containers": [
        {"name": "base", "securityContext": {"privileged": True}}]}}
    memo: dict = {}
    baseline = evaluate_pod(pod, "baseline", memo=memo)
    restricted = evaluate_pod(pod, "restricted", memo=memo)
    assert baseline == evaluate_pod(pod, "baseline")
    assert restricted == evaluate_pod(pod, "restricted")
    assert {v.rule for v in baseline} == {"baseline: hostNamespaces", "baseline: privileged"}
    assert all(isinstance(result, list) for result in memo.values())


def _rules(pod: dict[str, Any], level: str, version: str) -> set[str]:
    return {v.rule for v in evaluate_pod(pod, level, version)}


def _sysctl(name: str) -> dict[str, Any]:
    return tweak(minimal_valid_pod("baseline", 0), lambda p: p["spec"].update(
        securityContext={"sysctls": [{"name": name, "value": "1"}]}))


@pytest.mark.parametrize(("name", "allowed_from"), [
    ("net.ipv4.ip_local_reserved_ports", 27), ("net.ipv4.tcp_keepalive_time", 29),
    ("net.ipv4.tcp_fin_timeout", 29), ("net.ipv4.tcp_keepalive_intvl", 29),
    ("net.ipv4.tcp_keepalive_probes", 29), ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_wmem", 32),
])
def test_sysctl_allowed_only_from_its_version(name: str, allowed_from: int) -> None:
    assert _rules(_sysctl(name), "baseline", f"v1.{allowed_from - 1}") == {"baseline: sysctls"}
    assert _rules(_sysctl(name), "baseline", f"v1.{allowed_from}") == set()
    assert _rules(_sysctl(name), "baseline", "latest") == set()


def test_sysctl_at_v1_29_not_v1_26() -> None:
    pod = _sysctl("net.ipv4.tcp_keepalive_time")
    assert evaluate_pod(pod, "baseline", "v1.29") == []
    (found,) = evaluate_pod(pod, "baseline", "v1.26")
    assert found.path == "spec.securityContext.sysctls[net.ipv4.tcp_keepalive_time]"


def _unmasked_userns(level: str) -> dict[str, Any]:
    def change(p: dict[str, Any]) -> None:
        p["spec"]["hostUsers"] = False
        p["spec"]["containers"][0].setdefault("securityContext", {})["procMount"] = "Unmasked"
    return tweak(minimal_valid_pod(level, 35), change)


def test_proc_mount_user_namespace_relaxed_at_latest_baseline_only() -> None:
    pod = _unmasked_userns("baseline")
    assert evaluate_pod(pod, "baseline", "latest") == []
    assert _rules(pod, "baseline", "v1.34") == {"baseline: procMount"}
    # Restricted keeps the unconditional block through procMount_restricted's override.
    assert _rules(_unmasked_userns("restricted"), "restricted", "latest") == {
        "restricted: procMount_restricted"}
    assert _rules(_unmasked_userns("restricted"), "restricted", "v1.34") == {
        "baseline: procMount"}


def test_run_as_root_in_user_namespace_relaxed_from_1_35() -> None:
    pod = tweak(minimal_valid_pod("restricted", 35), lambda p: p["spec"].update(
        hostUsers=False, securityContext={**p["spec"]["securityContext"],
                                          "runAsUser": 0, "runAsNonRoot": False}))
    assert evaluate_pod(pod, "restricted", "latest") == []
    assert _rules(pod, "restricted", "v1.34") == {"restricted: runAsUser",
                                                   "restricted: runAsNonRoot"}


def test_selinux_container_engine_t_from_1_31() -> None:
    pod = tweak(minimal_valid_pod("baseline", 0), lambda p: p["spec"].update(
        securityContext={"seLinuxOptions": {"type": "container_engine_t"}}))
    assert evaluate_pod(pod, "baseline", "v1.31") == []
    assert _rules(pod, "baseline", "v1.30") == {"baseline: seLinuxOptions"}


def test_seccomp_annotations_before_1_19_fields_after() -> None:
    annotated = tweak(minimal_valid_pod("baseline", 0), lambda p: p["metadata"].update(
        annotations={"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}))
    assert _rules(annotated, "baseline", "v1.18") == {"baseline: seccompProfile_baseline"}
    assert evaluate_pod(annotated, "baseline", "v1.19") == []
    field = tweak(minimal_valid_pod("baseline", 0), lambda p: p["spec"].update(
        securityContext={"seccompProfile": {"type": "Unconfined"}}))
    assert evaluate_pod(field, "baseline", "v1.18") == []
    assert _rules(field, "baseline", "v1.19") == {"baseline: seccompProfile_baseline"}
