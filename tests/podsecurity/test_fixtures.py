"""Upstream's fixture cases (test/fixtures_*.go), run through evaluate_pod."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.validation.podsecurity import LEVELS, evaluate_pod

from .fixtures import (
    NEWEST_MINOR,
    checks_for_level_and_version,
    get_fixtures,
    minimal_valid_pod,
    overriders,
)


def _rules_for(level: str, minor: int, check: str) -> set[str]:
    """Rules that may report a failure of `check`: itself, or what overrides it here."""
    ids = {check} | (overriders(check, minor) if level == "restricted" else set())
    return {f"{lvl}: {i}" for i in ids for lvl in LEVELS}


def _cases(minor: int) -> list[Any]:
    cases = []
    for level in LEVELS:
        for check in checks_for_level_and_version(level, minor):
            passing, failing = get_fixtures(level, minor, check)
            for kind, pods in (("pass", passing), ("fail", failing)):
                for i, pod in enumerate(pods):
                    cases.append(pytest.param(level, check, kind, pod,
                                              id=f"{level}-{check}-{kind}-{i}"))
    return cases


def _assert_case(level: str, version: str, minor: int, check: str, kind: str,
                 pod: dict[str, Any]) -> None:
    found = evaluate_pod(pod, level, version)
    if kind == "pass":
        # Upstream requires a pass fixture to be allowed by the whole level, not just one check.
        assert found == [], [v.message for v in found]
    else:
        rules = _rules_for(level, minor, check)
        assert any(v.rule in rules for v in found), [v.message for v in found]


@pytest.mark.parametrize(("level", "check", "kind", "pod"), _cases(NEWEST_MINOR))
def test_fixture_latest(level: str, check: str, kind: str, pod: dict[str, Any]) -> None:
    _assert_case(level, "latest", NEWEST_MINOR, check, kind, pod)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("minor", range(NEWEST_MINOR + 1))
def test_fixtures_every_version(level: str, minor: int) -> None:
    """The same generators at every policy version v1.0..v1.35, as upstream's testdata tree."""
    version = f"v1.{minor}"
    assert evaluate_pod(minimal_valid_pod(level, minor), level, version) == []
    for check in checks_for_level_and_version(level, minor):
        passing, failing = get_fixtures(level, minor, check)
        for pod in passing:
            _assert_case(level, version, minor, check, "pass", pod)
        for pod in failing:
            _assert_case(level, version, minor, check, "fail", pod)


@pytest.mark.parametrize("minor", range(NEWEST_MINOR + 1))
@pytest.mark.parametrize("os_name", ["linux", "windows"])
def test_minimal_os_pods(os_name: str, minor: int) -> None:
    """base_linux / base_windows: OS-specific minimal restricted pods pass at their version."""
    pod = minimal_valid_pod("restricted", minor, os_name)
    assert evaluate_pod(pod, "restricted", f"v1.{minor}") == []


def test_windows_exemptions_start_at_1_25() -> None:
    windows = minimal_valid_pod("restricted", 25, "windows")
    rules = {v.rule for v in evaluate_pod(windows, "restricted", "v1.24")}
    assert rules == {"restricted: allowPrivilegeEscalation", "restricted: capabilities_restricted",
                     "restricted: seccompProfile_restricted"}
