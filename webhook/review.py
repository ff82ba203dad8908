"""One admission review, start to finish, for either hook: the AdmissionReview edge of the
one decision core (webhook.decide). Pure.

A review is answered with (HTTP status, JSON body, Decision). Bad input gets a 4xx with a
precise reason, or an AdmissionReview denial when the body names a uid to answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from webhook import admission, budget, decide
from webhook.admission import AdmissionRequest, BadReview
from webhook.airflow_pods import AirflowTask
from webhook.mutation.overrides import APPLIED
from webhook.policy.model import DEFAULT_ANNOTATION_PREFIX, PolicySet
from webhook.rules import known
from webhook.validation.validate import INTERNAL_RULE

MUTATE, VALIDATE = "mutate", "validate"
# Single-call mode: the mutating call also validates the pod it produces (one round trip per
# pod instead of two); a later mutating webhook's changes are only checked on reinvocation.
MUTATE_AND_VALIDATE = "mutate-validate"
# The webhook's own namespace: whatever one of Airflow's accounts writes there is refused.
REFUSE = "refuse"
OWN_NAMESPACE_RULE = known("airflow: webhookNamespace")
# A dry run (`kubectl create --dry-run=server`) is answered exactly like the real create: the
# hooks declare sideEffects None, so kube-apiserver sends it to preview what admission does, and
# deploy/README.md's install check depends on seeing our patch and our denials there.
TIME_RULE = known("webhook: time budget")


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
    # Later writes go to the validating hooks only (the writer hooks); the mutating hook acts
    # on a pod create alone.
    if not (request.is_pod_create
            or (hook == VALIDATE and (request.is_pod_write or request.is_pod_connect))):
        return 200, admission.allow(request), Decision(hook, "skip", request.namespace, pod_name)
    if policies is None:
        # Not ready: say so rather than pretend; the failurePolicy decides what happens.
        return 503, error_body("no policy set is loaded yet"), Decision(
            hook, "invalid", request.namespace, pod_name, reason="not ready")
    asked = decide.PodRequest(
        pod=request.object, namespace=request.namespace, username=request.username,
        operation=request.operation, old_pod=request.old_object,
        subresource=request.sub_resource, dry_run=request.dry_run, name=request.name)
    stages = {MUTATE: decide.MUTATE, VALIDATE: decide.VALIDATE}.get(hook, decide.BOTH)
    decision = decide.decide(asked, policies, stages)
    return _answer(hook, request, policies, pod_name, decision)


def _answer(hook: str, request: AdmissionRequest, policies: PolicySet, pod_name: str,
            decision: decide.Decision) -> tuple[int, dict, Decision]:
    """The AdmissionReview response and the log record of one decision."""
    checked = decision.validation
    rules = decision.rules if decision.refusals or decision.caps else (
        checked.rules_violated if checked else ())
    extra: dict[str, Any] = {}
    if checked and checked.exempted:
        extra["exempted"] = list(checked.exempted)
    if decision.write:
        extra.update(operation=request.operation, subresource=request.sub_resource or "-")
    if decision.caps:
        extra["caps"] = sorted({e.cap for e in decision.caps})
    logged = dict(hook=hook, namespace=request.namespace, pod=pod_name, task=decision.task,
                  revision=policies.revision, policies=decision.applied, rules=rules,
                  warnings=len(decision.warnings), extra=extra,
                  reason="over a cap" if decision.caps else "")
    audit = checked.audit_annotations if checked else None
    if decision.verdict == decide.DENY:
        body = admission.deny(request.api_version, request.uid, decision.code, decision.message,
                              warnings=decision.warnings, audit=audit,
                              reason="BadRequest" if decision.code == 400 else "Forbidden")
        return 200, body, Decision(**logged, decision="deny")
    if hook == MUTATE:
        if decision.verdict == decide.SKIP:
            return 200, admission.allow(request), Decision(**logged, decision="skip")
        audit = {"policy-revision": policies.revision} if decision.patch else None
    body = admission.allow(request, patch=decision.patch or None, warnings=decision.warnings,
                           audit=audit)
    acted = hook == MUTATE or decision.write or decision.patch or (
        checked and (checked.policies or checked.rules_violated))
    return 200, body, Decision(**logged, decision="allow" if acted else "skip",
                               patch_ops=len(decision.patch))


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


def _pod_name(request: AdmissionRequest) -> str:
    """On CREATE with generateName the name is empty: show the prefix."""
    if request.name:
        return request.name
    return decide.pod_name(request.object if isinstance(request.object, dict) else {})


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
