"""envelope: labels — labels a DAG author may not set because Services and NetworkPolicies
select pods by them.

A KPO pod labelled `tier=airflow, component=api-server, release=airflow` (stock KPO `labels=`)
matches the official chart's API-server Service: once Ready it receives other tasks'
Execution-API calls, with their tokens. A label matching a `forbidden` rule (key glob, and
one of its values when listed) is refused, unless the admin's pod_template_file itself sets
exactly that label on pods of this type (`templateLabels`: the chart's worker template labels
executor pods `tier=airflow, component=worker, release=<release>`). On an override
annotation, a forbidden label is always refused.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from webhook.envelope.context import EnvelopeContext
from webhook.envelope.rule_names import LABELS
from webhook.pod.reading import map_at, path_key
from webhook.policy.model import Envelope, LabelRule, LabelRules, matches_any
from webhook.violations import Violation, violation


def _forbids(rule: LabelRule, key: str, value: Any) -> bool:
    return fnmatchcase(key, rule.key) and (not rule.values or value in rule.values)


def _from_template(rules: LabelRules, key: str, value: Any, ctx: EnvelopeContext) -> bool:
    return not ctx.fragment and any(
        ctx.pod_type in t.pod_types and (key, value) in t.labels for t in rules.template_labels)


def _shown(rule: LabelRule) -> str:
    return rule.key + (f"={'|'.join(rule.values)}" if rule.values else "")


def check_labels(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    rules = envelope.labels
    if rules is None:
        return []
    found = []
    # in any order: the envelope reports its violations sorted
    for key, value in map_at(map_at(pod, "metadata"), "labels").items():
        key = str(key)
        if not matches_any(key, rules.keys):
            continue  # most labels: one regex, no rule by rule
        hits = [r for r in rules.forbidden if _forbids(r, key, value)]
        if value is None or not hits or _from_template(rules, key, value, ctx):
            continue
        found.append(violation(
            f"metadata.labels{path_key(key)}", "must not be set: Services and NetworkPolicies "
            f"select Airflow's components by it ({', '.join(_shown(r) for r in hits)}; "
            f"Envelope/{envelope.name} labels)", value, LABELS))
    return found
