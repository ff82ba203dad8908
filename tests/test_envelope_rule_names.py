"""The rule names the envelope reports under are the ones Exemptions and the linter know
(webhook/envelope/rule_names.py)."""

from __future__ import annotations

from webhook.envelope.registry import ENVELOPE_CHECKS
from webhook.policy.names import family_checks
from webhook.rules import FAMILIES


def test_envelope_rule_names_are_what_exemptions_name():
    rules = {rule for rule, _ in ENVELOPE_CHECKS.values()}
    assert rules == {"envelope: resources", "envelope: placement",
                     "envelope: priorityClassNames", "envelope: serviceAccountNames",
                     "envelope: schedulerNames", "envelope: runtimeClassNames",
                     "envelope: schedulingGates", "envelope: lockedFields",
                     "envelope: secrets", "envelope: volumes",
                     "envelope: labels", "envelope: affinity", "envelope: limits"}
    assert set(family_checks(FAMILIES["envelope"])) == {r.split(": ")[1] for r in rules}
