"""`spec.match` of every kind: which pods a policy applies to, and, for a policy that gives
something, the scopes a DAG author could forge (an error: they would never apply)."""

from __future__ import annotations

from webhook.airflow_pods import PodType
from webhook.policy.compile.context import Context, PolicyDocument
from webhook.policy.model import AIRFLOW_POD_TYPES, LabelSelector, Match


def compile_match(ctx: Context, doc: PolicyDocument, spec: dict | None) -> Match:
    spec = spec or {}
    selector = None
    if "labelSelector" in spec:
        sel = spec["labelSelector"]
        selector = LabelSelector(
            tuple(sorted(sel.get("matchLabels", {}).items())),
            tuple((e["key"], e["operator"], tuple(e.get("values", ())))
                  for e in sel.get("matchExpressions", ())),
        )
        for i, (_, operator, values) in enumerate(selector.match_expressions):
            # As Kubernetes validates a selector: `In` with no values matches nothing.
            if operator in ("In", "NotIn") and not values:
                ctx.error(doc, f"spec.match.labelSelector.matchExpressions[{i}]",
                          f"operator {operator} needs at least one value")
            elif operator in ("Exists", "DoesNotExist") and values:
                ctx.error(doc, f"spec.match.labelSelector.matchExpressions[{i}].values",
                          f"must be empty for operator {operator}", quote=False)
    types = frozenset(PodType(t) for t in spec.get("podTypes", ())) or AIRFLOW_POD_TYPES
    if PodType.OTHER in types and selector is None:
        ctx.error(doc, "spec.match.labelSelector",
                  "podTypes 'other' needs a labelSelector: foreign pods are never matched "
                  "by namespace alone")
    return Match(types, tuple(spec.get("namespaces", ())), tuple(spec.get("dagIds", ())),
                 tuple(spec.get("taskIds", ())), selector)


def compile_grant_match(ctx: Context, doc: PolicyDocument, spec: dict | None) -> Match:
    """compile_match() for a policy that gives something: a scope that could only be met by
    what the DAG author writes would silently never apply (Match.grants), so it is an error."""
    match = compile_match(ctx, doc, spec)
    airflow_types = match.pod_types & AIRFLOW_POD_TYPES
    if match.selector is not None and airflow_types:
        ctx.error(doc, "spec.match.labelSelector",
                  "cannot scope this on executor or KPO pods: their labels are written by "
                  "the DAG author, so it would never apply; use namespaces, podTypes and "
                  "dagIds (docs/threat-model.md)")
    scoped = any(p != "*" for p in (*match.dag_ids, *match.task_ids))
    if scoped and airflow_types == {PodType.KPO}:
        ctx.error(doc, "spec.match.dagIds",
                  "a KPO pod's DAG and task ids are its author's choice and never select "
                  "this, so it would never apply; scope it by namespaces with dagIds "
                  "['*'] (docs/threat-model.md)")
    return match
