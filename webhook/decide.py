"""One decision for one pod request: the mutation, then the validation of the pod it leaves.

Every edge asks this module, so they cannot drift: the server's hooks (webhook.review), the
offline commands (`mutate`, `validate`), `audit`, `policy test` and the Airflow cluster policy
(webhook.airflow_policy). Pure: a PodRequest and a PolicySet in, a Decision out.

Stages: the mutating hook runs MUTATE, the validating hook VALIDATE (on the pod as it came),
single-call mode and every offline judge BOTH (the validation sees the mutated pod, exactly as
the validating call would after our patch). A refused override ends the decision: nothing is
patched, and the validation is not reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from webhook.airflow_pods import AirflowTask
from webhook.mutation.mutate import MutationResult, mutate_pod
from webhook.mutation.overrides import Refusal
from webhook.policy.model import PolicySet
from webhook.validation.validate import (
    DENY_CODE,
    MODES,
    ValidationResult,
    validate_pod,
)
from webhook.validation.violations import Violation

CREATE = "CREATE"
MUTATE, VALIDATE, BOTH = "mutate", "validate", "both"
ALLOW, DENY, SKIP = "allow", "deny", "skip"
BAD_REQUEST = 400


@dataclass(frozen=True)
class PodRequest:
    """What is asked: a pod, who writes it, where, and how (as an AdmissionReview says it).

    `old_pod`, `operation` and `subresource` carry UPDATEs and subresource writes; today only
    a plain CREATE is judged, anything else is answered `skip`. `today` is the date
    Exemptions expire against (None: the real today)."""

    pod: dict
    namespace: str = ""
    username: str | None = None
    operation: str = CREATE
    old_pod: dict | None = None
    subresource: str = ""
    dry_run: bool = False
    today: date | None = None


@dataclass(frozen=True)
class Decision:
    """What the webhook decides about one request."""

    task: AirflowTask | None
    verdict: str  # allow | deny | skip (skip: nothing selects the pod, or not a CREATE)
    pod: dict  # the pod as judged: mutated unless the mutation refused it
    patch: list[dict] = field(default_factory=list)
    applied: tuple[str, ...] = ()  # what the mutation applied, then the policies that judged
    refusals: tuple[Refusal, ...] = ()
    violations: Mapping[str, tuple[Violation, ...]] = field(default_factory=dict)  # by mode
    warnings: tuple[str, ...] = ()
    message: str = ""  # the denial message, as kube-apiserver shows it; "" when allowed
    code: int = 200  # the denial's HTTP code: 400 for a malformed override, else 403
    mutation: MutationResult | None = None
    validation: ValidationResult | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict != DENY

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule refused or violated (unwaived, in any mode), sorted."""
        return tuple(sorted({r.rule for r in self.refusals}
                            | {v.rule for vs in self.violations.values() for v in vs}))

    @property
    def would_deny(self) -> bool:
        """Denied if every policy enforced: a refusal or any unwaived violation, in any mode."""
        return bool(self.refusals) or any(self.violations.get(m) for m in MODES)


def decide(request: PodRequest, policies: PolicySet, stages: str = BOTH) -> Decision:
    """Judge one request with one policy set, running the stages asked for."""
    if request.operation != CREATE or request.subresource or not isinstance(request.pod, dict):
        return Decision(None, SKIP, request.pod if isinstance(request.pod, dict) else {})
    pod = request.pod
    mutation: MutationResult | None = None
    if stages in (MUTATE, BOTH):
        mutation = mutate_pod(pod, policies, request.namespace, request.username)
        if mutation.refusals:
            return Decision(mutation.task, DENY, pod, applied=mutation.applied,
                            refusals=mutation.refusals, warnings=mutation.warnings,
                            message=refusal_message(pod, mutation),
                            code=BAD_REQUEST if mutation.malformed else DENY_CODE,
                            mutation=mutation)
        if stages == MUTATE:
            return Decision(mutation.task, ALLOW if mutation.covered else SKIP, mutation.pod,
                            patch=mutation.patch, applied=mutation.applied,
                            warnings=mutation.warnings, mutation=mutation)
        pod = mutation.pod
    checked = validate_pod(pod, policies, request.namespace, request.username,
                           today=request.today)
    warnings = (*(mutation.warnings if mutation else ()), *checked.warnings)
    applied = (*(mutation.applied if mutation else ()), *checked.policies)
    covered = (mutation.covered if mutation else False) or not checked.skipped
    verdict = DENY if not checked.allowed else ALLOW if covered else SKIP
    return Decision(checked.task, verdict, pod, patch=mutation.patch if mutation else [],
                    applied=applied, violations=checked.violations, warnings=warnings,
                    message=checked.message, code=checked.code, mutation=mutation,
                    validation=checked)


def refusal_message(pod: dict, mutation: MutationResult) -> str:
    """The mutating hook's denial: which pod, how many refusals, each with its rule."""
    task = mutation.task
    ids = f" (dag_id={task.dag_id}, task_id={task.task_id})" if task.dag_id else ""
    count = len(mutation.refusals)
    lead = f"pod {pod_name(pod) or '<unnamed>'}{ids}: {count} override refusal(s): "
    return lead + "; ".join(r.message for r in mutation.refusals)


def pod_name(pod: dict) -> str:
    """The pod's name; on CREATE with generateName, the prefix."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    name = meta.get("name") or meta.get("generateName") or ""
    return name if isinstance(name, str) else ""
