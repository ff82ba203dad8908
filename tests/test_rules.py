"""The one rule table (webhook/rules.py): every rule a review reports is in it, it refuses a
bad row when built, and the linter and the exemptions read it."""

from __future__ import annotations

import importlib
import importlib.util

import pytest

from webhook import rules
from webhook.policy.names import check_rule_name, rule_names
from webhook.rules import RULES, Rule, build, checks_of, known, never_waived, require_checked_in
from webhook.validation.validate import exemption_covers

# Where each rule that is not one of a family's registered checks is reported, by constant: an
# independent oracle for the table's `checked_in` column.
REPORTED = [
    ("webhook.airflow_pods", "POD_IDENTITY_RULE", "airflow: podIdentity"),
    ("webhook.validation.validate", "IDENTITY_RULE", "identity: trustedCreators"),
    ("webhook.validation.validate", "INTERNAL_RULE", "webhook: internal"),
    ("webhook.review", "INTERNAL_RULE", "webhook: internal"),
    ("webhook.review", "TIME_RULE", "webhook: time budget"),
    ("webhook.review", "OWN_NAMESPACE_RULE", "airflow: webhookNamespace"),
    ("webhook.mutation.mutate", "KEEP_IDENTITY_RULE", "airflow: keepIdentity"),
    ("webhook.validation.writes", "OWNED_METADATA_RULE", "airflow: ownedMetadata"),
    ("webhook.validation.writes", "BINDING_RULE", "airflow: binding"),
    ("webhook.validation.writes", "STANDING_RULE", "airflow: standingViolations"),
    ("webhook.validation.writes", "CONNECT_RULE", "airflow: exec"),
    ("webhook.caps", "CAP_RULE", "webhook: limits"),
    ("webhook.audit.judge", "POD_VALIDITY", "webhook: pod validity"),
    ("webhook.serving.review_endpoints", "BUSY_RULE", "webhook: large reviews"),
]


@pytest.mark.parametrize(("module", "constant", "rule_id"), REPORTED,
                         ids=[f"{m}.{c}" for m, c, _ in REPORTED])
def test_every_rule_a_module_reports_is_in_the_table(module: str, constant: str,
                                                      rule_id: str) -> None:
    assert getattr(importlib.import_module(module), constant) == rule_id
    assert rule_id in RULES


def test_the_table_names_modules_that_exist() -> None:
    for rule in RULES.values():
        assert importlib.util.find_spec(rule.checked_in) is not None, rule.id


def test_the_registered_checks_are_exactly_the_table_rows() -> None:
    from webhook.envelope.registry import ENVELOPE_CHECKS
    from webhook.validation.airflow_rules import AIRFLOW_RULES
    from webhook.validation.podsecurity import CHECKS

    assert {f"{c.level}: {c.id}" for c in CHECKS} == {
        r.id for r in RULES.values() if r.family in ("baseline", "restricted")}
    assert {f"airflow: {i}" for i in AIRFLOW_RULES} == {
        f"airflow: {c}" for c in checks_of("airflow", waivable_only=True)}
    assert {rule for rule, _ in ENVELOPE_CHECKS.values()} == {
        f"envelope: {c}" for c in checks_of("envelope")}


def test_the_rules_never_waived_are_the_identity_the_writes_and_the_webhooks_own() -> None:
    assert never_waived() == {
        "airflow: podIdentity", "airflow: keepIdentity", "airflow: ownedMetadata",
        "airflow: binding", "airflow: standingViolations", "airflow: exec",
        "airflow: webhookNamespace", "identity: trustedCreators", "webhook: internal",
        "webhook: time budget", "webhook: limits", "webhook: pod validity",
        "webhook: large reviews"}
    for rule_id in never_waived():
        assert not exemption_covers("*", rule_id), rule_id
        assert not exemption_covers(rule_id.split(":")[0], rule_id), rule_id
    assert exemption_covers("*", "airflow: images")


def test_the_linter_says_why_a_rule_is_never_waived() -> None:
    problem = check_rule_name("airflow: exec")
    assert problem is not None
    assert problem.reason == ("is never waived by an Exemption: it judges what Airflow's "
                              "accounts do to a pod after its create, which no policy of the "
                              "pod's waives")
    assert problem.suggestions == ()
    assert check_rule_name("airflow: podIdentity").reason == (
        "is never waived by an Exemption: it is matched on the very identity this rule doubts")
    assert check_rule_name("webhook: limits").reason == (
        "is never waived by an Exemption: it is the webhook's own limit, not a policy's rule")
    # An Exemption names only policy rules: the webhook's own are not a family to waive.
    assert "webhook: limits" not in rule_names()
    assert check_rule_name("webhook").reason.startswith("no rule family 'webhook'")


def test_known_refuses_a_rule_the_table_does_not_hold() -> None:
    assert known("envelope: secrets") == "envelope: secrets"
    with pytest.raises(KeyError, match=r"'envelope: secret' is not in webhook/rules.py"):
        known("envelope: secret")


def test_a_check_registered_without_a_row_or_a_row_without_its_check_fails_at_import() -> None:
    require_checked_in("webhook.validation.writes", [
        "airflow: ownedMetadata", "airflow: binding", "airflow: standingViolations",
        "airflow: exec"])
    with pytest.raises(ValueError) as caught:
        require_checked_in("webhook.validation.writes", [
            "airflow: ownedMetadata", "airflow: binding", "airflow: standingViolations",
            "airflow: execute"])
    assert str(caught.value) == (
        "webhook.validation.writes and webhook/rules.py disagree: not in the table: "
        "airflow: execute; in the table but not checked there: airflow: exec")


@pytest.mark.parametrize(("row", "error"), [
    (Rule("privileged", "webhook.x"), "rule id 'privileged' is not `<family>: <check>`"),
    (Rule("baseline:privileged", "webhook.x"),
     "rule id 'baseline:privileged' is not `<family>: <check>`"),
    (Rule("baseline: ", "webhook.x"), "rule id 'baseline: ' is not `<family>: <check>`"),
    (Rule("psa: privileged", "webhook.x"), "rule 'psa: privileged': unknown family 'psa'"),
    (Rule("baseline: privileged", "webhook.x"), "rule 'baseline: privileged' is registered twice"),
    (Rule("baseline: new", "x"), "rule 'baseline: new': checked_in must name a webhook module"),
    (Rule("webhook: new", "webhook.x"),
     "rule 'webhook: new' is waivable, but its family 'webhook' is not"),
    (Rule("airflow: new", "webhook.x", waivable=False),
     "rule 'airflow: new': a rule that is never waived says why, and only such a rule"),
    (Rule("airflow: new", "webhook.x", never_waived_because="why"),
     "rule 'airflow: new': a rule that is never waived says why, and only such a rule"),
])
def test_a_bad_row_fails_when_the_table_is_built(row: Rule, error: str) -> None:
    with pytest.raises(ValueError) as caught:
        build([*rules.RULES_TABLE, row])
    assert str(caught.value).startswith(error)
