"""Pod Security Standards (baseline, restricted), ported from Kubernetes pod-security-admission.

Upstream: staging/src/k8s.io/pod-security-admission/policy/ (check_*.go, registry.go,
visitor.go, helpers.go). Each check reports one Violation per offending field.
"""

from .registry import (
    CHECKS,
    LATEST,
    LEVELS,
    MAX_VERSION,
    Check,
    CheckFn,
    VersionedCheck,
    check_ids,
    evaluate_pod,
    parse_version,
)

__all__ = [
    "CHECKS",
    "LATEST",
    "LEVELS",
    "MAX_VERSION",
    "Check",
    "CheckFn",
    "VersionedCheck",
    "check_ids",
    "evaluate_pod",
    "parse_version",
]
