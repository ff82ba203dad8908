"""The validating hook's decision: Pod Security and Airflow rules, modes, exemptions, identity.

Pure: pod and policy set in, ValidationResult out; nothing here raises on a malformed pod.

- Every ValidationPolicy matching the pod runs its podSecurity level and its Airflow rules;
  its `mode` says what a violation does: `enforce` denies, `warn` adds an admission warning,
  `audit` records it in auditAnnotations. A violation found by several policies is reported
  once, in its strongest mode (enforce > warn > audit).
- Exemptions waive matching violations (see `exemption_covers`); every waiver is still
  reported, as a warning and in the `exempted` audit annotation.
- Every Envelope matching the pod is judged on it (webhook.envelope), in the
  Envelope's mode, whatever shaped the pod; it is reported as `Envelope/<name>` among the
  policies applied.
- Labels are not identity: a pod labelled as Airflow's by a creator the Settings do not trust
  is denied or flagged (Settings identity.untrusted), and gets no exemptions, since those are
  matched on the very labels the creator wrote.
- Messages fit kube-apiserver's limits (shared/research/k8s-admission.md §1.4): warnings are
  single lines of at most 256 characters and 4096 in total, audit annotation keys are
  qualified names without `/`, and the denial message stays within 4096 characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from fnmatch import fnmatchcase

from webhook import budget
from webhook.airflow_pods import POD_IDENTITY_RULE, AirflowTask, PodType, identify
from webhook.envelope import check_pod as check_envelope
from webhook.hook_selection import NOT_AIRFLOW
from webhook.kube.messages import (
    AUDIT_VALUE_LIMIT,
    MAX_MESSAGE_CHARS,
    clean,
    clip_message,
    fit_warnings,
    join_within,
)
from webhook.policy.model import Exemption, PolicySet, ValidationPolicy
from webhook.policy.names import normalise_rule
from webhook.rules import known, never_waived, require_checked_in
from webhook.validation.airflow_rules import evaluate_rules
from webhook.validation.podsecurity import LEVELS, evaluate_pod, parse_version
from webhook.violations import Violation, violation

MODES = ("enforce", "warn", "audit")  # strongest first
_STRENGTH = {mode: rank for rank, mode in enumerate(MODES)}
DENY_CODE = 403  # Airflow fails the task at once on 403, and never requeues it (airflow.md §3)
ALLOW_CODE = 200
MESSAGE_ITEM_LIMIT = 1024  # one absurd value must not crowd every other violation out
IDENTITY_RULE = known("identity: trustedCreators")
INTERNAL_RULE = known("webhook: internal")
require_checked_in(__name__, (POD_IDENTITY_RULE, IDENTITY_RULE, INTERNAL_RULE))
# Never waived, whatever an Exemption names (`*` included): see webhook/rules.py for why.
UNWAIVABLE = never_waived()
# Airflow's executor requeues a failed create whose message holds these (airflow.md §3): a
# policy denial must fail the task, not loop it, whatever text a pod smuggles in.
_REQUEUE_WORDS = re.compile(r"exceeded quota|object has been modified|too old resource version",
                            re.IGNORECASE)


@dataclass(frozen=True)
class ValidationResult:
    task: AirflowTask
    allowed: bool
    code: int
    message: str  # the denial message; "" when allowed
    violations: Mapping[str, tuple[Violation, ...]]  # mode -> what is reported in that mode
    warnings: tuple[str, ...] = ()  # ready for AdmissionReview response.warnings
    audit_annotations: dict[str, str] = field(default_factory=dict)
    policies: tuple[str, ...] = ()  # ValidationPolicy names applied
    rules_violated: tuple[str, ...] = ()  # rule names reported (not waived), sorted, unique
    exempted: tuple[str, ...] = ()  # Exemption names that waived something
    waived: tuple[tuple[Violation, str], ...] = ()  # (violation, exemption name)
    creator_trusted: bool | None = None  # None: not checked, or no rule for the namespace
    # Why nothing was checked, when nothing was: "allowed" must never mean "never looked at".
    skipped: str = ""
    # Who reports each violation (in its strongest mode): a ValidationPolicy's name,
    # `Envelope/<name>`, or the identity check's rule; audit reports say which policy found what.
    sources: Mapping[Violation, str] = field(default_factory=dict)
    silent: tuple[str, ...] = ()  # policies applied that found nothing on this pod


def validate_pod(
    pod: dict,
    policies: PolicySet,
    namespace: str = "",
    username: str | None = None,
    *,
    level: str | None = None,
    level_version: str = "latest",
    today: date | None = None,
) -> ValidationResult:
    """Judge a pod. With `level`, ignore the policies and check only that Pod Security level
    (at `level_version`, e.g. v1.30) on any pod, as the cluster's own PSA would. Raises only
    for an unknown level or version."""
    if level is not None and level not in LEVELS:
        raise ValueError(f"unknown Pod Security level {level!r}: want one of {', '.join(LEVELS)}")
    if level is not None:
        parse_version(level_version)  # a bad version is the caller's error, raised here
    pod = pod if isinstance(pod, dict) else {}
    task = identify(pod, namespace, airflow_writer=policies.settings.is_airflow_identity(username))
    try:
        if level is not None:
            found = evaluate_pod(pod, level, level_version)
            return _decide(pod, task, dict.fromkeys(found, "enforce"), (), [], None,
                           extra_audit={"level": f"{level}:{level_version}"})
        return _validate(pod, policies, task, username, today or date.today())
    except Exception as exc:  # fail closed: an unjudged pod must not pass silently
        unreadable = violation("spec", "must be readable by the validating webhook",
                               type(exc).__name__, INTERNAL_RULE)
        return _decide(pod, task, {unreadable: "enforce"}, (), [], None)


def _validate(pod: dict, policies: PolicySet, task: AirflowTask, username: str | None,
              today: date) -> ValidationResult:
    if not policies.covers(task):
        return ValidationResult(task, True, ALLOW_CODE, "", {m: () for m in MODES},
                                skipped=NOT_AIRFLOW)
    applied = policies.validation_policies_for(task)
    found: dict[Violation, str] = {}
    sources: dict[Violation, str] = {}
    reporting: set[str] = set()
    memo: dict = {}  # one Pod Security check result per check, shared by the policies
    for policy in applied:
        for found_violation in policy_violations(pod, policy, memo):
            _report(found, found_violation, policy.mode, sources, policy.name)
            reporting.add(policy.name)
    trusted = None
    if username is not None and task.pod_type is not PodType.OTHER and not task.unmarked:
        trusted = policies.settings.creator_trusted(task.namespace, username, task.pod_type)
    # One of Airflow's accounts trusted here, but not for the type it claims (the worker
    # labelling its pod as an executor pod): judged with the allowances of what it may create.
    demoted = (trusted is False and policies.settings.is_airflow_identity(username)
               and policies.settings.creator_trusted(task.namespace, username or "") is True)
    envelopes = policies.envelopes_for(task)
    templates = policies.templates_for(task) if envelopes else []
    for envelope in envelopes:
        for found_violation in check_envelope(pod, envelope, policies.settings.node_pool_label,
                                              templates,
                                              envelope_type(task, demoted),
                                              task.namespace):
            _report(found, found_violation, envelope.mode, sources, f"Envelope/{envelope.name}")
            reporting.add(f"Envelope/{envelope.name}")
    for path, requirement, value in task.identity_problems:
        _report(found, violation(path, requirement, value, POD_IDENTITY_RULE), "enforce",
                sources, POD_IDENTITY_RULE)
    if trusted is False:
        mode = "enforce" if policies.settings.untrusted == "deny" else "warn"
        _report(found, untrusted_creator(task, username or ""), mode, sources, IDENTITY_RULE)
    # Exemptions are matched on labels the creator wrote: only trusted creators get them.
    exemptions = [] if trusted is False else policies.exemptions_for(task, today)
    audit = {"policy-revision": policies.revision}
    names = (*(p.name for p in applied), *(f"Envelope/{e.name}" for e in envelopes))
    if names:
        audit["policies"] = ",".join(names)
    if trusted is False:
        audit["untrusted-creator"] = username or ""
    result = replace(_decide(pod, task, found, names, exemptions, trusted, extra_audit=audit),
                     sources=sources, silent=tuple(n for n in names if n not in reporting))
    if not names and trusted is None and not found:
        return replace(result, skipped=f"no ValidationPolicy or Envelope selects this "
                                       f"{task.pod_type.value} pod in namespace "
                                       f"{task.namespace or '<none>'}")
    return result


def envelope_type(task: AirflowTask, demoted: bool) -> PodType:
    """The pod type the Envelope's type-scoped allowances (`templateUses` Secrets,
    `templateLabels`) are read for. One of Airflow's accounts that the namespace's
    trustedCreators trust, but not for executor pods (the worker, whose token is in every
    task's hands), and that labels a pod as an executor pod gets a KPO pod's allowances: never
    the metadata connection, the Fernet key or the JWT secret the chart's worker template
    gives executor pods. An account trusted for nothing here (the scheduler of a namespace the
    Settings do not list, a release they do not name yet) keeps the claimed type and is only
    flagged (identity.untrusted): Airflow's Secrets live in the namespaces the Settings list."""
    return PodType.KPO if demoted and task.pod_type is PodType.EXECUTOR else task.pod_type


def policy_violations(pod: dict, policy: ValidationPolicy, memo: dict | None = None
                      ) -> list[Violation]:
    found: list[Violation] = []
    if policy.pod_security_level:
        found += evaluate_pod(pod, policy.pod_security_level, policy.pod_security_version,
                              memo)
    return found + evaluate_rules(pod, policy.rules)


def _report(found: dict[Violation, str], reported: Violation, mode: str,
            sources: dict[Violation, str], source: str) -> None:
    """Keep each violation once, in its strongest mode, with the first source reporting it so."""
    if reported not in found or _STRENGTH[mode] < _STRENGTH[found[reported]]:
        found[reported] = mode
        sources[reported] = source


def untrusted_creator(task: AirflowTask, username: str) -> Violation:
    return violation(
        "request.userInfo.username",
        f"must be a trusted creator of Airflow pods in namespace {task.namespace or '<none>'} "
        f"(Settings identity.trustedCreators) to create a pod labelled as an Airflow "
        f"{task.pod_type.value} pod", username, IDENTITY_RULE)


# ---------------------------------------------------------------------------------------------
# Exemptions


def exemption_covers(entry: str, rule: str) -> bool:
    """Whether one entry of an Exemption's `rules` waives a violation of `rule`.

    - `*` waives everything (except the identity checks, which are never waived);
    - a source without a colon (`baseline`, `restricted`, `airflow`) waives that source's
      checks: `restricted` lets a pod run at baseline, it does not waive `baseline: ...`;
    - `source: check` waives that check; spaces around the colon do not matter, and globs
      work (`airflow: *`, `restricted: capabilities_*`). Case matters, as in check ids.
    """
    if rule in UNWAIVABLE:
        return False
    entry = normalise_rule(entry)
    if entry == "*":
        return True
    if ":" not in entry:
        return rule.split(":", 1)[0] == entry
    return fnmatchcase(normalise_rule(rule), entry)


def waiver_for(reported: Violation, exemptions: Iterable[Exemption]) -> Exemption | None:
    """The first exemption (by name) that waives a violation, if any."""
    return next((e for e in exemptions if any(exemption_covers(r, reported.rule)
                                              for r in e.rules)), None)


def _exemption_notice(exemption: Exemption, rules: list[str]) -> str:
    expiry = f"expires {exemption.expires.isoformat()}" if exemption.expires else "no expiry"
    return (f"exempted by {exemption.name} ({exemption.reason}; {expiry}): "
            f"{', '.join(rules)}")


# ---------------------------------------------------------------------------------------------
# The decision and its messages


def _decide(pod: dict, task: AirflowTask, found: Mapping[Violation, str],
            policy_names: tuple[str, ...], exemptions: list[Exemption], trusted: bool | None,
            extra_audit: Mapping[str, str] | None = None) -> ValidationResult:
    by_mode: dict[str, list[Violation]] = {m: [] for m in MODES}
    waived: list[tuple[Violation, str]] = []
    waived_rules: dict[str, set[str]] = {}
    for reported, mode in sorted(found.items()):
        budget.check()
        exemption = waiver_for(reported, exemptions)
        if exemption is None:
            by_mode[mode].append(reported)
        else:
            waived.append((reported, exemption.name))
            waived_rules.setdefault(exemption.name, set()).add(reported.rule)
    by_name = {e.name: e for e in exemptions}
    notices = [_exemption_notice(by_name[name], sorted(rules))
               for name, rules in sorted(waived_rules.items())]
    reported_all = [v for m in MODES for v in by_mode[m]]
    rules_violated = tuple(sorted({v.rule for v in reported_all}))
    denied = by_mode["enforce"]
    message = denial_message(pod, task, denied) if denied else ""
    warnings = tuple(fit_warnings([*notices, *sorted_messages(by_mode["warn"])]))
    audit = dict(extra_audit or {})
    audit["decision"] = "deny" if denied else "allow"
    strongest = next((m for m in MODES if by_mode[m]), None)
    if strongest:
        audit["mode"] = strongest
        audit["rules-violated"] = ", ".join(rules_violated)
    if by_mode["audit"]:
        audit["violations"] = join_within("", sorted_messages(by_mode["audit"]),
                                          AUDIT_VALUE_LIMIT)
    if notices:
        audit["exempted"] = join_within("", notices, AUDIT_VALUE_LIMIT)
    return ValidationResult(
        task=task,
        allowed=not denied,
        code=DENY_CODE if denied else ALLOW_CODE,
        message=message,
        violations={m: tuple(by_mode[m]) for m in MODES},
        warnings=warnings,
        audit_annotations={k: clean(v) for k, v in audit.items()},
        policies=policy_names,
        rules_violated=rules_violated,
        exempted=tuple(sorted(waived_rules)),
        waived=tuple(waived),
        creator_trusted=trusted,
    )


def sorted_messages(violations: Iterable[Violation]) -> list[str]:
    """Every message once, sorted: the same pod always gets the same text."""
    return sorted({clean(v.message) for v in violations})


def pod_label(pod: dict, task: AirflowTask) -> str:
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    if not name and isinstance(meta.get("generateName"), str):
        name = meta["generateName"]
    text = f"pod {clip_message(name, 253)}" if name else "pod"
    if task.dag_id is not None or task.task_id is not None:
        text += (f" (dag_id={clip_message(task.dag_id or '', 253)}, "
                 f"task_id={clip_message(task.task_id or '', 253)})")
    return text


def denial_message(pod: dict, task: AirflowTask, denied: list[Violation]) -> str:
    rules = len({v.rule for v in denied})
    lead = clean(f"{pod_label(pod, task)} violates {rules} rule(s): ")
    items = [clip_message(m, MESSAGE_ITEM_LIMIT) for m in sorted_messages(denied)]
    return _REQUEUE_WORDS.sub(lambda m: m.group(0).replace(" ", "-", 1),
                              join_within(lead, items, MAX_MESSAGE_CHARS))
