"""Every rule a review can report, in one table: its id, family, whether an Exemption may
waive it, and the module that checks it.

A violation, a refusal or a denial names the rule it breaks as `<family>: <check>`
(`baseline: privileged`, `airflow: exec`, `envelope: secrets`, `webhook: limits`). The policy
linter (policy/names.py) reads this table to tell a typo in an Exemption from a real rule and
to say why a rule is never waived; the validating hook reads it to know which rules no
Exemption reaches; the modules that check rules take their ids from it (`known`), and the Pod
Security registry and the Airflow rules check at import that the ids they run are exactly the
ones listed here for them (`require_checked_in`).

As Kubernetes pod-security-admission validates its Check table when it is built, `RULES` is
validated on import: ids are unique and `family: check`, families are known, a rule of a family
no Exemption may name is not waivable, and every rule that is never waived says why.

A new rule: one row here (its family, the module that checks it, and why it is never waived
if it is not waivable), then `known("<family>: <check>")` where it is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "FAMILIES",
    "RULES",
    "RULES_TABLE",
    "Family",
    "Rule",
    "build",
    "checks_of",
    "known",
    "never_waived",
    "require_checked_in",
]


@dataclass(frozen=True)
class Family:
    """A source of rules: the first half of a rule id."""

    name: str
    title: str
    # Whether an Exemption may name the family at all (and so waive its waivable rules).
    waivable: bool = True
    # Whether policies name its rules (Exemptions, the linter); the webhook's own limits are
    # not a policy's to name.
    in_policies: bool = True


@dataclass(frozen=True)
class Rule:
    id: str  # `<family>: <check>`
    checked_in: str  # the module that reports it
    waivable: bool = True
    # Why no Exemption waives it (only for a rule that is not waivable), shown by the linter.
    never_waived_because: str = ""

    @property
    def family(self) -> str:
        return self.id.split(": ", 1)[0]

    @property
    def check(self) -> str:
        return self.id.split(": ", 1)[1]


FAMILIES: Mapping[str, Family] = {f.name: f for f in (
    Family("baseline", "Pod Security baseline"),
    Family("restricted", "Pod Security restricted"),
    Family("airflow", "Airflow rules"),
    Family("envelope", "Envelope"),
    # The creator identity check is never waived: an exemption is matched on the very
    # labels an untrusted creator wrote.
    Family("identity", "creator identity", waivable=False),
    Family("webhook", "the webhook's own limits", waivable=False, in_policies=False),
)}

_PSA = "webhook.validation.podsecurity.registry"
_AIRFLOW_RULES = "webhook.validation.airflow_rules"
_ENVELOPE = "webhook.envelope.registry"
_VALIDATE = "webhook.validation.validate"
_WRITES = "webhook.validation.writes"
_DOUBTED = "it is matched on the very identity this rule doubts"
_WRITE = ("it judges what Airflow's accounts do to a pod after its create, which no "
          "policy of the pod's waives")
_OWN = "it is the webhook's own limit, not a policy's rule"


def _family(family: str, checked_in: str, checks: Iterable[str]) -> tuple[Rule, ...]:
    return tuple(Rule(f"{family}: {check}", checked_in) for check in checks)


def _never(rule_id: str, checked_in: str, because: str) -> Rule:
    return Rule(rule_id, checked_in, waivable=False, never_waived_because=because)


RULES_TABLE: tuple[Rule, ...] = (
    # Pod Security Standards, as upstream registers them (validation/podsecurity/registry.py).
    *_family("baseline", _PSA, (
        "hostNamespaces", "privileged", "capabilities_baseline", "hostPathVolumes", "hostPorts",
        "appArmorProfile", "seLinuxOptions", "procMount", "seccompProfile_baseline", "sysctls",
        "windowsHostProcess", "hostProbesAndHostLifecycle")),
    *_family("restricted", _PSA, (
        "restrictedVolumes", "allowPrivilegeEscalation", "runAsNonRoot", "runAsUser",
        "seccompProfile_restricted", "capabilities_restricted", "procMount_restricted")),
    # A ValidationPolicy's Airflow rules (validation/airflow_rules.py AIRFLOW_RULES).
    *_family("airflow", _AIRFLOW_RULES, (
        "images", "resources", "serviceAccounts", "hostPaths", "nodeSelectors", "tolerations",
        "automountServiceAccountToken")),
    # Airflow's own invariants, held whatever the policies say.
    _never("airflow: podIdentity", _VALIDATE, _DOUBTED),
    _never("airflow: keepIdentity", "webhook.mutation.mutate",
           "the mutation never changes which task a pod runs, nor whether the hooks see it"),
    _never("airflow: ownedMetadata", _WRITES, _WRITE),
    _never("airflow: binding", _WRITES, _WRITE),
    _never("airflow: standingViolations", _WRITES, _WRITE),
    _never("airflow: exec", _WRITES, _WRITE),
    _never("airflow: webhookNamespace", "webhook.review",
           "nothing of Airflow's may run in the webhook's own namespace"),
    # The admin's Envelope, one rule a section.
    *_family("envelope", _ENVELOPE, (
        "resources", "placement", "priorityClassNames", "serviceAccountNames", "schedulerNames",
        "runtimeClassNames", "lockedFields", "schedulingGates", "secrets", "limits", "volumes",
        "affinity", "labels")),
    _never("identity: trustedCreators", _VALIDATE, _DOUBTED),
    # The webhook's own limits: what it cannot judge is denied or refused, never waived.
    _never("webhook: internal", _VALIDATE, _OWN),
    _never("webhook: time budget", "webhook.review", _OWN),
    _never("webhook: limits", "webhook.caps", _OWN),
    _never("webhook: pod validity", "webhook.audit.judge", _OWN),
    _never("webhook: large reviews", "webhook.serving.review_endpoints", _OWN),
)


def build(table: Iterable[Rule]) -> dict[str, Rule]:
    """The table by id, refusing the mistakes a new row could make."""
    out: dict[str, Rule] = {}
    for rule in table:
        family, colon, check = rule.id.partition(": ")
        if not colon or not check or check != check.strip() or ":" in check:
            raise ValueError(f"rule id {rule.id!r} is not `<family>: <check>`")
        if family not in FAMILIES:
            raise ValueError(f"rule {rule.id!r}: unknown family {family!r} "
                             f"(families: {', '.join(FAMILIES)})")
        if rule.id in out:
            raise ValueError(f"rule {rule.id!r} is registered twice")
        if not rule.checked_in.startswith("webhook."):
            raise ValueError(f"rule {rule.id!r}: checked_in must name a webhook module")
        if rule.waivable and not FAMILIES[family].waivable:
            raise ValueError(f"rule {rule.id!r} is waivable, but its family {family!r} is not")
        if rule.waivable == bool(rule.never_waived_because):
            raise ValueError(f"rule {rule.id!r}: a rule that is never waived says why, and "
                             "only such a rule")
        out[rule.id] = rule
    return out


RULES: Mapping[str, Rule] = build(RULES_TABLE)


def known(rule_id: str) -> str:
    """`rule_id`, once it is in the table: how a module that reports a rule names it, so a
    rule no table row describes fails at import."""
    if rule_id not in RULES:
        raise KeyError(f"rule {rule_id!r} is not in webhook/rules.py")
    return rule_id


def checks_of(family: str, *, waivable_only: bool = False) -> list[str]:
    """The checks of a family (the part after `family: `), in table order."""
    return [r.check for r in RULES.values()
            if r.family == family and (r.waivable or not waivable_only)]


def never_waived() -> frozenset[str]:
    """Every rule no Exemption waives, whatever it names (`*` included)."""
    return frozenset(r.id for r in RULES.values() if not r.waivable)


def require_checked_in(module: str, rule_ids: Iterable[str]) -> None:
    """Raise unless the rules `module` runs are exactly the ones the table says it checks:
    a check registered without a row, or a row whose check is gone, fails at import."""
    ran = set(rule_ids)
    listed = {r.id for r in RULES.values() if r.checked_in == module}
    if ran != listed:
        missing = ", ".join(sorted(ran - listed)) or "none"
        stale = ", ".join(sorted(listed - ran)) or "none"
        raise ValueError(f"{module} and webhook/rules.py disagree: not in the table: {missing}; "
                         f"in the table but not checked there: {stale}")
