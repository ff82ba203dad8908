"""envelope: priorityClassNames, serviceAccountNames, schedulerNames, runtimeClassNames,
schedulingGates — allowlists of globs.

A name matching a `forbidden` glob is refused whatever `allowed` says. The service account
is also read from the deprecated `serviceAccount`, and an unset one is judged as `default`
(what the API server admits it as); an unset scheduler as `default-scheduler`.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from webhook.envelope.context import EnvelopeContext
from webhook.envelope.rule_names import (
    PRIORITY_CLASSES,
    RUNTIME_CLASSES,
    SCHEDULERS,
    SCHEDULING_GATES,
    SERVICE_ACCOUNTS,
)
from webhook.pod.reading import map_at
from webhook.policy.model import Envelope, NameAllowlist
from webhook.violations import Violation, violation

DEFAULT_SCHEDULER = "default-scheduler"  # what the API server defaults an unset name to


def _name_violation(path: str, value: str, allowlist: NameAllowlist, envelope: Envelope,
                    section: str, rule: str) -> list[Violation]:
    if allowlist.admits(value):
        return []
    forbidden = [p for p in allowlist.forbidden if fnmatchcase(value, p)]
    why = (f"is forbidden ({', '.join(forbidden)})" if forbidden else
           f"must be one of {', '.join(allowlist.allowed) or '(none allowed)'}")
    return [violation(path, f"{why} (Envelope/{envelope.name} {section})", value, rule)]


def _set_name(pod: dict, field_name: str) -> str | None:
    value = map_at(pod, "spec").get(field_name)
    return value if isinstance(value, str) and value else None


def check_priority_class(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                         ) -> list[Violation]:
    allowlist, name = envelope.priority_class_names, _set_name(pod, "priorityClassName")
    if allowlist is None or name is None:
        return []  # unset: the cluster's default class
    return _name_violation("spec.priorityClassName", name, allowlist, envelope,
                           "priorityClassNames", PRIORITY_CLASSES)


def check_service_account(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                          ) -> list[Violation]:
    allowlist = envelope.service_account_names
    if allowlist is None:
        return []
    named = [(f, n) for f in ("serviceAccountName", "serviceAccount")
             if (n := _set_name(pod, f)) is not None]
    if not named and not ctx.fragment:
        named = [("serviceAccountName", "default")]  # what the API server admits it as
    return [v for f, n in named
            for v in _name_violation(f"spec.{f}", n, allowlist, envelope,
                                     "serviceAccountNames", SERVICE_ACCOUNTS)]


def check_scheduler(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    allowlist, name = envelope.scheduler_names, _set_name(pod, "schedulerName")
    if allowlist is None or (name is None and ctx.fragment):
        return []
    return _name_violation("spec.schedulerName", name or DEFAULT_SCHEDULER, allowlist,
                           envelope, "schedulerNames", SCHEDULERS)


def check_runtime_class(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                        ) -> list[Violation]:
    allowlist, name = envelope.runtime_class_names, _set_name(pod, "runtimeClassName")
    if allowlist is None or name is None:
        return []  # unset: the node's default runtime
    return _name_violation("spec.runtimeClassName", name, allowlist, envelope,
                           "runtimeClassNames", RUNTIME_CLASSES)


def check_scheduling_gates(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                           ) -> list[Violation]:
    allowlist = envelope.scheduling_gates
    gates = map_at(pod, "spec").get("schedulingGates")
    if allowlist is None or not isinstance(gates, list):
        return []
    names = [g.get("name") if isinstance(g, dict) else g for g in gates]
    return [v for i, n in enumerate(names)
            for v in (_name_violation(f"spec.schedulingGates[{i}].name", n, allowlist,
                                      envelope, "schedulingGates", SCHEDULING_GATES)
                      if isinstance(n, str) else
                      [violation(f"spec.schedulingGates[{i}]", "must name a gate", n,
                                 SCHEDULING_GATES)])]
