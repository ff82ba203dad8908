"""The check registry and evaluator, ported from pod-security-admission policy/registry.go."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from webhook import budget
from webhook.rules import require_checked_in
from webhook.violations import Violation, violation

from . import checks as c

LEVELS = ("baseline", "restricted")
LATEST = "latest"

Version = tuple[int, int]
CheckFn = Callable[[dict[str, Any], dict[str, Any]], list[Violation]]


@dataclass(frozen=True)
class VersionedCheck:
    """One revision of a check, in force from min_version until the next revision."""

    min_version: Version
    func: CheckFn
    # Baseline check IDs this restricted revision replaces (upstream OverrideCheckIDs).
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    versions: list[VersionedCheck] = field(default_factory=list)


def _v(minor: int) -> Version:
    return (1, minor)


# The one registry table; IDs, levels, versions and overrides as upstream registers them.
CHECKS: list[Check] = [
    # ---- baseline
    Check("hostNamespaces", "baseline", [VersionedCheck(_v(0), c.host_namespaces_v1_0)]),
    Check("privileged", "baseline", [VersionedCheck(_v(0), c.privileged_v1_0)]),
    Check("capabilities_baseline", "baseline",
          [VersionedCheck(_v(0), c.capabilities_baseline_v1_0)]),
    Check("hostPathVolumes", "baseline", [VersionedCheck(_v(0), c.host_path_volumes_v1_0)]),
    Check("hostPorts", "baseline", [VersionedCheck(_v(0), c.host_ports_v1_0)]),
    Check("appArmorProfile", "baseline", [VersionedCheck(_v(0), c.app_armor_profile_v1_0)]),
    Check("seLinuxOptions", "baseline", [
        VersionedCheck(_v(0), c.se_linux_options_v1_0),
        VersionedCheck(_v(31), c.se_linux_options_v1_31),
    ]),
    Check("procMount", "baseline", [
        VersionedCheck(_v(0), c.proc_mount_v1_0),
        VersionedCheck(_v(35), c.proc_mount_v1_35),
    ]),
    Check("seccompProfile_baseline", "baseline", [
        VersionedCheck(_v(0), c.seccomp_profile_baseline_v1_0),
        VersionedCheck(_v(19), c.seccomp_profile_baseline_v1_19),
    ]),
    Check("sysctls", "baseline", [
        VersionedCheck(_v(0), c.sysctls_v1_0),
        VersionedCheck(_v(27), c.sysctls_v1_27),
        VersionedCheck(_v(29), c.sysctls_v1_29),
        VersionedCheck(_v(32), c.sysctls_v1_32),
    ]),
    Check("windowsHostProcess", "baseline",
          [VersionedCheck(_v(0), c.windows_host_process_v1_0)]),
    Check("hostProbesAndHostLifecycle", "baseline",
          [VersionedCheck(_v(34), c.host_probes_and_host_lifecycle_v1_34)]),
    # ---- restricted
    Check("restrictedVolumes", "restricted", [
        VersionedCheck(_v(0), c.restricted_volumes_v1_0, overrides=("hostPathVolumes",)),
    ]),
    Check("allowPrivilegeEscalation", "restricted", [
        VersionedCheck(_v(8), c.allow_privilege_escalation_v1_8),
        VersionedCheck(_v(25), c.allow_privilege_escalation_v1_25),
    ]),
    Check("runAsNonRoot", "restricted", [
        VersionedCheck(_v(0), c.run_as_non_root_v1_0),
        VersionedCheck(_v(35), c.run_as_non_root_v1_35),
    ]),
    Check("runAsUser", "restricted", [
        VersionedCheck(_v(23), c.run_as_user_v1_23),
        VersionedCheck(_v(35), c.run_as_user_v1_35),
    ]),
    Check("seccompProfile_restricted", "restricted", [
        VersionedCheck(_v(19), c.seccomp_profile_restricted_v1_19,
                       overrides=("seccompProfile_baseline",)),
        VersionedCheck(_v(25), c.seccomp_profile_restricted_v1_25,
                       overrides=("seccompProfile_baseline",)),
    ]),
    Check("capabilities_restricted", "restricted", [
        VersionedCheck(_v(22), c.capabilities_restricted_v1_22,
                       overrides=("capabilities_baseline",)),
        VersionedCheck(_v(25), c.capabilities_restricted_v1_25,
                       overrides=("capabilities_baseline",)),
    ]),
    Check("procMount_restricted", "restricted", [
        VersionedCheck(_v(35), c.proc_mount_restricted_v1_35, overrides=("procMount",)),
    ]),
]

require_checked_in(__name__, (f"{check.level}: {check.id}" for check in CHECKS))

# Upstream's maxVersion: the newest MinimumVersion registered; "latest" and newer clamp to it.
MAX_VERSION: Version = max(v.min_version for check in CHECKS for v in check.versions)

_LEVEL_OF = {check.id: check.level for check in CHECKS}
_VERSION_RE = re.compile(r"^v1\.(0|[1-9][0-9]*)$")


def parse_version(version: str) -> Version:
    """"latest" or "v1.N" (as upstream api.ParseVersion), clamped to MAX_VERSION."""
    if version == LATEST:
        return MAX_VERSION
    match = _VERSION_RE.match(version) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f'invalid policy version {version!r}: want "latest" or "v1.<minor>"')
    return min((1, int(match.group(1))), MAX_VERSION)


def _select(check: Check, version: Version) -> VersionedCheck | None:
    """The newest revision whose min_version <= version, or None if the check is newer."""
    chosen = None
    for revision in check.versions:
        if revision.min_version <= version:
            chosen = revision
    return chosen


@cache
def _table(level: str, version: Version) -> tuple[tuple[str, VersionedCheck], ...]:
    """(check ID, revision) in force at level/version, restricted overrides applied."""
    baseline = [(ch.id, r) for ch in CHECKS if ch.level == "baseline"
                if (r := _select(ch, version)) is not None]
    if level == "baseline":
        return tuple(sorted(baseline, key=lambda item: item[0]))
    restricted = [(ch.id, r) for ch in CHECKS if ch.level == "restricted"
                  if (r := _select(ch, version)) is not None]
    # Overrides count only from revisions in force at this version, as upstream populate().
    overridden = {o for _, r in restricted for o in r.overrides}
    kept = [(i, r) for i, r in baseline if i not in overridden]
    return tuple(sorted(kept, key=lambda item: item[0]) + sorted(restricted,
                                                                  key=lambda item: item[0]))


def _level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"invalid policy level {level!r}: want one of {', '.join(LEVELS)}")
    return level


def check_ids(level: str, version: str = LATEST) -> list[str]:
    """IDs of the checks that run at level/version, baseline first, each group sorted."""
    return [check_id for check_id, _ in _table(_level(level), parse_version(version))]


def evaluate_pod(pod: dict[str, Any], level: str, version: str = LATEST,
                 memo: dict[CheckFn, Any] | None = None) -> list[Violation]:
    """Every violation of the Pod Security Standard `level` at policy `version`, sorted.

    Never raises on a malformed pod: unreadable parts are read as unset, as the Go types
    upstream decodes into would leave them. `memo`, shared by the calls for one pod, keeps
    each check's result, so baseline checks run once when baseline and restricted both apply.
    """
    table = _table(_level(level), parse_version(version))
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    spec = pod.get("spec") if isinstance(pod, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    spec = spec if isinstance(spec, dict) else {}
    found: set[Violation] = set()
    for check_id, revision in table:
        budget.check()
        if memo is not None and revision.func in memo:
            found.update(memo[revision.func])
            continue
        try:
            result = revision.func(meta, spec)
        except Exception as exc:  # fail closed: an unreadable pod must not pass silently
            result = [violation("spec", "must be readable by the pod security checks",
                                f"{type(exc).__name__}", f"{_LEVEL_OF[check_id]}: {check_id}")]
        if memo is not None:
            memo[revision.func] = result
        found.update(result)
    return sorted(found)
