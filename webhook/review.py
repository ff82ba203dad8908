"""One admission review, start to finish, for either hook: pure, shared by server and CLI.

A review is answered with (HTTP status, JSON body, Decision). Bad input gets a 4xx with a
precise reason, or an AdmissionReview denial when the body names a uid to answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from webhook import admission, budget
from webhook.admission import AdmissionRequest, BadReview
from webhook.airflow_pods import AirflowTask, identify
from webhook.caps import CAP_RULE, CapExceeded, check_caps, describe
from webhook.mutation.mutate import MutationResult, mutate_pod
from webhook.mutation.overrides import APPLIED
from webhook.policy.model import DEFAULT_ANNOTATION_PREFIX, PolicySet
from webhook.validation.validate import ValidationResult, pod_label, validate_pod
from webhook.validation.writes import judge_write

MUTATE, VALIDATE = "mutate", "validate"
# Single-call mode: the mutating call also validates the pod it produces (one round trip per
# pod instead of two); a later mutating webhook's changes are only checked on reinvocation.
MUTATE_AND_VALIDATE = "mutate-validate"
# The webhook's own namespace: whatever one of Airflow's accounts writes there is refused.
REFUSE = "refuse"
OWN_NAMESPACE_RULE = "airflow: webhookNamespace"
# A dry run (`kubectl create --dry-run=server`) is answered exactly like the real create: the
# hooks declare sideEffects None, so kube-apiserver sends it to preview what admission does, and
# deploy/README.md's install check depends on seeing our patch and our denials there.
INTERNAL_RULE = "webhook: internal"
TIME_RULE = "webhook: time budget"


@dataclass(frozen=True)
class Decision:
    """What one review decided: the decision log line and the metrics come from this."""

    hook: str
    decision: str  # allow | deny | skip | invalid
    namespace: str = ""
    pod: str = ""
    task: AirflowTask | None = None
    rules: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    revision: str = ""
    patch_ops: int = 0
    warnings: int = 0
    reason: str = ""
    extra: dict = field(default_factory=dict)
    # Who asked, and about what: the request's uid joins this decision with kube-apiserver's
    # audit event (the uid is also sent back as the audit annotation `review-uid`).
    uid: str = ""
    username: str | None = None
    operation: str = ""
    dry_run: bool = False


def answer(hook: str, body: Any, policies: PolicySet | None) -> tuple[int, dict, Decision]:
    """Answer a decoded AdmissionReview for `hook`: MUTATE, VALIDATE or MUTATE_AND_VALIDATE."""
    try:
        request = admission.parse_review(body)
    except BadReview as exc:
        return bad_review(hook, body, str(exc))
    pod_name = _pod_name(request)
    if hook == REFUSE:
        return _refuse(request, pod_name)
    if hook == VALIDATE and request.is_pod_write:
        if policies is None:
            return 503, error_body("no policy set is loaded yet"), Decision(
                hook, "invalid", request.namespace, pod_name, reason="not ready")
        # Both pods are judged: a write is bounded like a create (old and new alike).
        exceeded = (check_caps(request.object, policies.settings.limits)
                    or check_caps(request.old_object, policies.settings.limits))
        if exceeded:
            return _refuse_caps(hook, request, policies, pod_name, exceeded)
        return _answer_write(request, policies, pod_name)
    if not request.is_pod_create:
        return 200, admission.allow(request), Decision(hook, "skip", request.namespace, pod_name)
    if policies is None:
        # Not ready: say so rather than pretend; the failurePolicy decides what happens.
        return 503, error_body("no policy set is loaded yet"), Decision(
            hook, "invalid", request.namespace, pod_name, reason="not ready")
    exceeded = check_caps(request.object, policies.settings.limits)
    if exceeded:
        return _refuse_caps(hook, request, policies, pod_name, exceeded)
    if hook == MUTATE:
        return _answer_mutation(request, policies, pod_name)
    if hook == MUTATE_AND_VALIDATE:
        return _answer_mutation(request, policies, pod_name, validate=True)
    return _answer_validation(request, policies, pod_name)


def _answer_mutation(request: AdmissionRequest, policies: PolicySet, pod_name: str,
                     validate: bool = False) -> tuple[int, dict, Decision]:
    result: MutationResult = mutate_pod(request.object, policies, request.namespace,
                                        request.username)
    base = dict(hook=MUTATE_AND_VALIDATE if validate else MUTATE, namespace=request.namespace,
                pod=pod_name, task=result.task, revision=policies.revision,
                policies=result.applied, warnings=len(result.warnings))
    if not validate and not result.covered:
        return 200, admission.allow(request), Decision(**base, decision="skip")
    # What policies and annotations (64 KiB each at most) added can only matter to the named
    # caps: the pod itself was walked whole above.
    grown = check_caps(result.pod, policies.settings.limits, walk=False) if result.pod else []
    if grown and not result.refusals:
        return _refuse_caps(base["hook"], request, policies, pod_name, grown,
                            "what the overrides, profiles and policies made of it: ")
    if result.refusals:
        code = 400 if result.malformed else 403
        lead = _lead(pod_name, result.task, len(result.refusals), "override")
        message = lead + "; ".join(r.message for r in result.refusals)
        rules = tuple(sorted({r.rule for r in result.refusals}))
        body = admission.deny(request.api_version, request.uid, code, message,
                              warnings=result.warnings,
                              reason="BadRequest" if code == 400 else "Forbidden")
        return 200, body, Decision(**base, decision="deny", rules=rules)
    if validate:
        return _validate_mutated(request, policies, result, base)
    audit = {"policy-revision": policies.revision} if result.patch else None
    body = admission.allow(request, patch=result.patch, warnings=result.warnings, audit=audit)
    return 200, body, Decision(**base, decision="allow", patch_ops=len(result.patch))


def _validate_mutated(request: AdmissionRequest, policies: PolicySet, result: MutationResult,
                      base: dict) -> tuple[int, dict, Decision]:
    """Judge the pod exactly as the validating call would see it after our patch."""
    checked: ValidationResult = validate_pod(result.pod, policies, request.namespace,
                                             request.username)
    warnings = (*result.warnings, *checked.warnings)
    base = {**base, "policies": (*result.applied, *checked.policies),
            "rules": checked.rules_violated, "warnings": len(warnings),
            "extra": {"exempted": list(checked.exempted)} if checked.exempted else {}}
    if not checked.allowed:
        body = admission.deny(request.api_version, request.uid, checked.code, checked.message,
                              warnings=warnings, audit=checked.audit_annotations)
        return 200, body, Decision(**base, decision="deny")
    body = admission.allow(request, patch=result.patch, warnings=warnings,
                           audit=checked.audit_annotations)
    acted = result.patch or checked.policies or checked.rules_violated
    return 200, body, Decision(**base, decision="allow" if acted else "skip",
                               patch_ops=len(result.patch))


def _answer_validation(request: AdmissionRequest, policies: PolicySet, pod_name: str
                       ) -> tuple[int, dict, Decision]:
    result: ValidationResult = validate_pod(request.object, policies, request.namespace,
                                            request.username)
    base = dict(hook=VALIDATE, namespace=request.namespace, pod=pod_name, task=result.task,
                revision=policies.revision, policies=result.policies,
                rules=result.rules_violated, warnings=len(result.warnings),
                extra={"exempted": list(result.exempted)} if result.exempted else {})
    if result.allowed:
        body = admission.allow(request, warnings=result.warnings,
                               audit=result.audit_annotations)
        decision = "allow" if result.policies or result.rules_violated else "skip"
        return 200, body, Decision(**base, decision=decision)
    body = admission.deny(request.api_version, request.uid, result.code, result.message,
                          warnings=result.warnings, audit=result.audit_annotations)
    return 200, body, Decision(**base, decision="deny")


def _answer_write(request: AdmissionRequest, policies: PolicySet, pod_name: str
                  ) -> tuple[int, dict, Decision]:
    """A later write to a pod (webhook.validation.writes), answered as a validation is."""
    result = judge_write(request.old_object, request.object, policies, request.namespace,
                         request.username, request.sub_resource)
    base = dict(hook=VALIDATE, namespace=request.namespace, pod=pod_name, task=result.task,
                revision=policies.revision, policies=result.policies,
                rules=result.rules_violated, warnings=len(result.warnings),
                extra={"operation": request.operation,
                       "subresource": request.sub_resource or "-"})
    if result.allowed:
        body = admission.allow(request, warnings=result.warnings,
                               audit=result.audit_annotations)
        return 200, body, Decision(**base, decision="allow")
    body = admission.deny(request.api_version, request.uid, result.code, result.message,
                          warnings=result.warnings, audit=result.audit_annotations)
    return 200, body, Decision(**base, decision="deny")


def _refuse(request: AdmissionRequest, pod_name: str) -> tuple[int, dict, Decision]:
    """The webhook's own namespace: a pod there could mount the webhook's TLS Secret or join
    its Service and answer admission reviews, so none of Airflow's accounts writes one."""
    what = f"{request.operation.lower()} {request.sub_resource or 'pod'}"
    message = (f"pod {pod_name or '<unnamed>'}: {request.username or 'this account'} is one of "
               f"Airflow's accounts, and no {what} by Airflow's accounts is allowed in "
               f"namespace {request.namespace}, the airflow-pod-webhook's own (a pod there "
               f"could mount the webhook's TLS Secret or join its Service) "
               f"({OWN_NAMESPACE_RULE})")
    body = admission.deny(request.api_version, request.uid, 403, message)
    return 200, body, Decision(REFUSE, "deny", request.namespace, pod_name,
                               rules=(OWN_NAMESPACE_RULE,))


def _refuse_caps(hook: str, request: AdmissionRequest, policies: PolicySet, pod_name: str,
                 exceeded: list[CapExceeded], what: str = "") -> tuple[int, dict, Decision]:
    """A pod past a cap is refused before anything else is done with it (HTTP 400 in the
    review: the pod, not a policy, is at fault)."""
    limit = policies.settings.limits.violations
    pod = request.object if isinstance(request.object, dict) else {}
    message = (f"{pod_label(pod, identify(pod, request.namespace))}: too large to review: "
               f"{what}{describe(exceeded, limit)} ({CAP_RULE})")
    body = admission.deny(request.api_version, request.uid, 400, message, reason="BadRequest")
    return 200, body, Decision(hook, "deny", request.namespace, pod_name, rules=(CAP_RULE,),
                               revision=policies.revision, reason="over a cap",
                               extra={"caps": sorted({e.cap for e in exceeded})})


def answer_within(hook: str, body: Any, policies: PolicySet | None, seconds: float,
                  started: float | None = None) -> tuple[int, dict, Decision]:
    """`answer`, given `seconds` from `started` (a time.monotonic() reading; now by default):
    past them, the work stops at its next budget check and the review is denied, saying so
    (the mutating hook too: kube-apiserver would otherwise fail it open by timeout)."""
    try:
        with budget.deadline(seconds, started=started):
            status, payload, decision = answer(hook, body, policies)
    except budget.OutOfTime as exc:
        status, payload, decision = out_of_time(hook, body, exc.budget)
    return status, traced(payload), with_request_facts(decision, body)


REVIEW_UID = "review-uid"


def traced(payload: dict) -> dict:
    """An AdmissionReview answer carrying its request's uid as the audit annotation
    `review-uid`: kube-apiserver writes it into the audit event of the request as
    `<webhook name>/review-uid` (the uid it sends a webhook is made per call, and appears
    nowhere else in the audit log), so the decision log line joins that event by uid."""
    response = payload.get("response")
    if isinstance(response, dict) and isinstance(response.get("uid"), str):
        response.setdefault("auditAnnotations", {})[REVIEW_UID] = response["uid"]
    return payload


def with_request_facts(decision: Decision, body: Any) -> Decision:
    """The decision, naming the request it answers (uid, username, operation, dryRun) as far
    as the body tells them, even a body too broken to review."""
    request = body.get("request") if isinstance(body, dict) else None
    if not isinstance(request, dict):
        return decision
    user = request.get("userInfo") if isinstance(request.get("userInfo"), dict) else {}
    return replace(decision, uid=_text(request.get("uid")),
                   username=user.get("username") if isinstance(user.get("username"), str)
                   else None,
                   operation=_text(request.get("operation")),
                   dry_run=request.get("dryRun") is True)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def out_of_time(hook: str, body: Any, seconds: float) -> tuple[int, dict, Decision]:
    named = admission.review_uid(body)
    request = body.get("request") if isinstance(body, dict) else None
    namespace = request.get("namespace") if isinstance(request, dict) else None
    decision = Decision(hook, "deny", namespace if isinstance(namespace, str) else "",
                        rules=(TIME_RULE,), reason="out of time")
    message = (f"airflow-pod-webhook could not finish reviewing this pod within its time "
               f"budget of {seconds:g}s (kube-apiserver's timeout less a margin): pod not "
               f"admitted ({TIME_RULE})")
    if named is None:
        return 503, error_body(message), decision
    version, uid = named
    return 200, admission.deny(version, uid, 503, message, reason="Timeout"), decision


def _lead(pod_name: str, task: AirflowTask, count: int, what: str) -> str:
    ids = f" (dag_id={task.dag_id}, task_id={task.task_id})" if task.dag_id else ""
    return f"pod {pod_name or '<unnamed>'}{ids}: {count} {what} refusal(s): "


def _pod_name(request: AdmissionRequest) -> str:
    """On CREATE with generateName the name is empty: show the prefix."""
    if request.name:
        return request.name
    obj = request.object if isinstance(request.object, dict) else {}
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name") or meta.get("generateName") or ""
    return name if isinstance(name, str) else ""


def bad_review(hook: str, body: Any, message: str) -> tuple[int, dict, Decision]:
    """A body we cannot judge: a 400, or an AdmissionReview denial when it names a uid."""
    decision = Decision(hook, "invalid", reason=message)
    named = admission.review_uid(body)
    if named is None:
        return 400, error_body(message), decision
    version, uid = named
    return 200, admission.deny(version, uid, 400, f"bad AdmissionReview: {message}",
                               reason="BadRequest"), decision


def last_resort(hook: str, body: Any, annotation_prefix: str = DEFAULT_ANNOTATION_PREFIX
                ) -> tuple[int, dict, Decision]:
    """After an unexpected error: validate fails closed; mutate fails closed for a pod that
    asks for overrides (its author's input may be what broke us, and the defaults and locks
    it would skip are what keep it safe), and open, with a warning, for any other pod."""
    named = admission.review_uid(body)
    decision = Decision(hook, "invalid", reason="internal error")
    if named is None:
        return 500, error_body("internal error; see the webhook's log"), decision
    version, uid = named
    note = "airflow-pod-webhook hit an internal error; see its log"
    asked = override_keys(body, annotation_prefix)
    if hook == MUTATE and not asked:
        return 200, admission.allow_uid(
            version, uid, warnings=[f"{note}: cluster defaults were not applied"]), decision
    if hook == MUTATE:
        return 200, admission.deny(
            version, uid, 403, f"{note} while applying {', '.join(asked)}: pod not admitted, "
            f"since its overrides could not be checked ({INTERNAL_RULE})",
            reason="InternalError"), decision
    return 200, admission.deny(version, uid, 403, f"{note}: pod not checked, so not admitted",
                               reason="InternalError"), decision


def override_keys(body: Any, annotation_prefix: str) -> list[str]:
    """The override annotations (under the prefix) of the pod in a raw review, sorted."""
    request = body.get("request") if isinstance(body, dict) else None
    obj = request.get("object") if isinstance(request, dict) else None
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict):
        return []
    return sorted(k for k in annotations
                  if isinstance(k, str) and k.startswith(annotation_prefix)
                  and k != annotation_prefix + APPLIED)


def error_body(message: str) -> dict:
    return {"error": message}
