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

from webhook.airflow_pods import AirflowTask, identify
from webhook.caps import CAP_RULE, CapExceeded, check_caps, describe
from webhook.mutation.mutate import MutationResult, mutate_pod
from webhook.mutation.overrides import Refusal
from webhook.policy.model import PolicySet
from webhook.validation.validate import (
    DENY_CODE,
    MODES,
    ValidationResult,
    pod_label,
    validate_pod,
)
from webhook.validation.writes import (
    BINDING,
    CONNECTS,
    SUBRESOURCES,
    judge_connect,
    judge_write,
)
from webhook.violations import Violation

CREATE, UPDATE, CONNECT = "CREATE", "UPDATE", "CONNECT"
MUTATE, VALIDATE, BOTH = "mutate", "validate", "both"
ALLOW, DENY, SKIP = "allow", "deny", "skip"
BAD_REQUEST = 400


@dataclass(frozen=True)
class PodRequest:
    """What is asked: a pod, who writes it, where, and how (as an AdmissionReview says it).

    `old_pod`, `operation` and `subresource` carry later writes: an UPDATE of the pod, its
    ephemeral containers or its resize, and a binding (for which `pod` is the Binding) are
    judged by webhook.validation.writes; any other request is answered `skip`. `today` is the
    date Exemptions expire against (None: the real today)."""

    pod: dict
    namespace: str = ""
    username: str | None = None
    operation: str = CREATE
    old_pod: dict | None = None
    subresource: str = ""
    dry_run: bool = False
    today: date | None = None
    name: str = ""  # the pod's name where `pod` is not the pod (a CONNECT's exec options)


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
    caps: tuple[CapExceeded, ...] = ()  # the caps the pod exceeds: refused before any work
    write: bool = False  # a later write to a live pod, not a create

    @property
    def allowed(self) -> bool:
        return self.verdict != DENY

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule refused or violated (unwaived, in any mode), sorted."""
        return tuple(sorted({r.rule for r in self.refusals}
                            | {v.rule for vs in self.violations.values() for v in vs}
                            | ({CAP_RULE} if self.caps else set())))

    @property
    def would_deny(self) -> bool:
        """Denied if every policy enforced: a refusal, a cap or any unwaived violation."""
        return (bool(self.refusals) or bool(self.caps)
                or any(self.violations.get(m) for m in MODES))


def is_write(request: PodRequest) -> bool:
    """A later write to a pod: what the writer hooks send (never the mutating hook)."""
    if request.operation == UPDATE:
        return request.subresource in SUBRESOURCES
    if request.operation == CONNECT:
        return request.subresource in CONNECTS
    return request.operation == CREATE and request.subresource == BINDING


def decide(request: PodRequest, policies: PolicySet, stages: str = BOTH, *,
           level: str | None = None, level_version: str = "latest") -> Decision:
    """Judge one request with one policy set, running the stages asked for.

    With `level`, the policies are set aside: the pod is judged by that Pod Security level
    alone (at `level_version`, e.g. v1.30), whatever its labels, as the cluster's own
    pod-security admission would (`validate --level`). ValueError for an unknown level or
    version."""
    if not isinstance(request.pod, dict):
        return Decision(None, SKIP, {})
    if level is not None:
        return pod_security_only(request, policies, level, level_version)
    limits = policies.settings.limits
    if is_write(request):
        if stages == MUTATE:
            return Decision(None, SKIP, request.pod, write=True)
        if request.operation == CONNECT:
            judged = judge_connect(request.pod, request.name, policies, request.namespace,
                                   request.username, request.subresource)
            return Decision(judged.task, ALLOW if judged.allowed else DENY, request.pod,
                            violations=judged.violations, message=judged.message,
                            code=judged.code, validation=judged, write=True)
        # Both pods are judged: a write is bounded like a create (old and new alike).
        exceeded = check_caps(request.pod, limits) or check_caps(request.old_pod, limits)
        if exceeded:
            return capped(request, policies, exceeded, write=True)
        judged = judge_write(request.old_pod, request.pod, policies, request.namespace,
                             request.username, request.subresource, today=request.today)
        return Decision(judged.task, ALLOW if judged.allowed else DENY, request.pod,
                        applied=judged.policies, violations=judged.violations,
                        warnings=judged.warnings, message=judged.message, code=judged.code,
                        validation=judged, write=True)
    if request.operation != CREATE or request.subresource:
        return Decision(None, SKIP, request.pod)
    pod = request.pod
    exceeded = check_caps(pod, limits)
    if exceeded:
        return capped(request, policies, exceeded)
    mutation: MutationResult | None = None
    if stages in (MUTATE, BOTH):
        mutation = mutate_pod(pod, policies, request.namespace, request.username)
        # What policies and annotations (64 KiB each at most) added can only matter to the
        # named caps: the pod itself was walked whole above.
        grown = check_caps(mutation.pod, limits, walk=False) if mutation.pod else []
        if grown and not mutation.refusals:
            return capped(request, policies, grown,
                          "what the overrides, profiles and policies made of it: ")
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


def pod_security_only(request: PodRequest, policies: PolicySet, level: str,
                      level_version: str) -> Decision:
    """One Pod Security level on the pod as it came: no mutation, no caps, no policy."""
    checked = validate_pod(request.pod, policies, request.namespace, request.username,
                           level=level, level_version=level_version, today=request.today)
    return Decision(checked.task, ALLOW if checked.allowed else DENY, request.pod,
                    applied=checked.policies, violations=checked.violations,
                    warnings=checked.warnings, message=checked.message, code=checked.code,
                    validation=checked)


def capped(request: PodRequest, policies: PolicySet, exceeded: list[CapExceeded],
           what: str = "", *, write: bool = False) -> Decision:
    """A pod past a cap, refused before anything else is done with it (HTTP 400: the pod, not
    a policy, is at fault)."""
    task = identify(request.pod, request.namespace)
    message = (f"{pod_label(request.pod, task)}: too large to review: "
               f"{what}{describe(exceeded, policies.settings.limits.violations)} ({CAP_RULE})")
    return Decision(task, DENY, request.pod, message=message, code=BAD_REQUEST,
                    caps=tuple(exceeded), write=write)


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
