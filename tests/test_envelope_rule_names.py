"""The rule names the envelope reports under are the ones Exemptions and the linter know
(webhook/envelope/rule_names.py)."""

from __future__ import annotations

from webhook.envelope.registry import ENVELOPE_CHECKS
from webhook.policy.names import RULE_FAMILIES


def test_envelope_rule_names_are_what_exemptions_name():
    rules = {rule for rule, _ in ENVELOPE_CHECKS.values()}
    assert rules == {"envelope: resources", "envelope: placement",
                     "envelope: priorityClassNames", "envelope: serviceAccountNames",
                     "envelope: schedulerNames", "envelope: runtimeClassNames",
                     "envelope: schedulingGates", "envelope: lockedFields",
                     "envelope: secrets", "envelope: volumes",
                     "envelope: labels", "envelope: affinity", "envelope: limits"}
    assert set(RULE_FAMILIES["envelope"].checks()) == {r.split(": ")[1] for r in rules}
