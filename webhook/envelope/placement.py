"""envelope: placement — which nodes a pod may land on.

`nodeName` (it bypasses the scheduler and every taint) and node-field selectors are refused;
`nodeSelector` and node affinity (required and preferred terms) may name only the allowed
pools on the Settings nodePoolLabel key and the listed other labels; `NotIn`/`Exists`/`Gt`/
`Lt` on the pool key would admit any pool and are refused when pools are listed. With
`requireNodePool`, the pod must be pinned to an allowed pool, so dropping a profile's pin
(`nodeSelector: null`) cannot escape it. Tolerations: see tolerations.py (same rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from webhook.envelope.context import EnvelopeContext
from webhook.envelope.rule_names import PLACEMENT
from webhook.pod.reading import list_at, map_at, path_key, str_at
from webhook.policy.model import Envelope
from webhook.violations import Violation, violation

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def check_node_name(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    if envelope.placement is None or not str_at(map_at(pod, "spec"), "nodeName"):
        return []
    return [violation("spec.nodeName", "must not be set: it bypasses the scheduler and every "
                      "taint (pick a node pool instead)", map_at(pod, "spec")["nodeName"],
                      PLACEMENT)]


def _pools_text(pools: tuple[str, ...] | None) -> str:
    return ", ".join(pools) if pools else "none"


def _pool_allowed(value: Any, pools: tuple[str, ...] | None) -> bool:
    return pools is None or (isinstance(value, str)
                             and any(fnmatchcase(value, p) for p in pools))


def _other_label_allowed(key: str, envelope: Envelope) -> bool:
    assert envelope.placement is not None
    return any(fnmatchcase(key, p) for p in envelope.placement.other_node_labels)


def _label_refusal(path: str, key: str, envelope: Envelope, ctx: EnvelopeContext,
                   value: Any) -> Violation:
    assert envelope.placement is not None
    others = ", ".join(envelope.placement.other_node_labels) or "none"
    return violation(path, f"must select nodes only by {ctx.pool_label} or an allowed label "
                           f"({others}), not {key}", value, PLACEMENT)


def check_node_selector(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                        ) -> list[Violation]:
    placement = envelope.placement
    if placement is None:
        return []
    found = []
    for key, value in sorted(map_at(map_at(pod, "spec"), "nodeSelector").items(),
                             key=lambda kv: str(kv[0])):
        path = f"spec.nodeSelector{path_key(str(key))}"
        if value is None and ctx.fragment:
            continue  # removing a selector: check_pin_removal
        if key == ctx.pool_label:
            if not _pool_allowed(value, placement.node_pools):
                found.append(violation(path, f"must be one of the allowed node pools "
                                             f"({_pools_text(placement.node_pools)})", value,
                                       PLACEMENT))
        elif not _other_label_allowed(str(key), envelope):
            found.append(_label_refusal(path, str(key), envelope, ctx, value))
    return found


def _node_terms(pod: dict) -> Iterable[tuple[str, dict, bool]]:
    """(path, node selector term, required?) of every node affinity term."""
    node = map_at(map_at(map_at(pod, "spec"), "affinity"), "nodeAffinity")
    base = "spec.affinity.nodeAffinity"
    for i, term in enumerate(list_at(map_at(node, _REQUIRED), "nodeSelectorTerms")):
        if isinstance(term, dict):
            yield f"{base}.{_REQUIRED}.nodeSelectorTerms[{i}]", term, True
    for i, weighted in enumerate(list_at(node, _PREFERRED)):
        term = map_at(weighted, "preference")
        yield f"{base}.{_PREFERRED}[{i}].preference", term, False


def _expression_refusal(expression: dict, envelope: Envelope, ctx: EnvelopeContext
                        ) -> str | None:
    assert envelope.placement is not None
    key, operator = str_at(expression, "key"), str_at(expression, "operator")
    values = list_at(expression, "values")
    pools = envelope.placement.node_pools
    if key != ctx.pool_label:
        return None if _other_label_allowed(key, envelope) else (
            f"must select nodes only by {ctx.pool_label} or an allowed label "
            f"({', '.join(envelope.placement.other_node_labels) or 'none'}), not {key}")
    if operator == "In":
        bad = [v for v in values if not _pool_allowed(v, pools)]
        return (f"must name only allowed node pools ({_pools_text(pools)})"
                if bad or not values else None)
    if operator == "DoesNotExist":
        return ("must not select nodes outside every node pool (requireNodePool)"
                if envelope.placement.require_node_pool else None)
    if pools is None:
        return None
    return (f"must use operator In with allowed node pools ({_pools_text(pools)}): "
            f"{operator or '<unset>'} on {key} admits other pools")


def check_node_affinity(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                        ) -> list[Violation]:
    if envelope.placement is None:
        return []
    found = []
    for path, term, _required in _node_terms(pod):
        for j, expression in enumerate(list_at(term, "matchExpressions")):
            refusal = _expression_refusal(expression if isinstance(expression, dict) else {},
                                          envelope, ctx)
            if refusal:
                found.append(violation(f"{path}.matchExpressions[{j}]", refusal, expression,
                                       PLACEMENT))
        for j, expression in enumerate(list_at(term, "matchFields")):
            found.append(violation(f"{path}.matchFields[{j}]", "must not select nodes by "
                                   "field (it pins the pod to named nodes, as nodeName does)",
                                   expression, PLACEMENT))
    return found


def _pinned_by_affinity(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> bool:
    """Every required term (they are ORed) restricts the pool key to allowed pools."""
    assert envelope.placement is not None
    terms = [t for _, t, required in _node_terms(pod) if required]

    def pins(term: dict) -> bool:
        return any(isinstance(e, dict) and str_at(e, "key") == ctx.pool_label
                   and str_at(e, "operator") == "In" and list_at(e, "values")
                   and all(_pool_allowed(v, envelope.placement.node_pools)
                           for v in list_at(e, "values"))
                   for e in list_at(term, "matchExpressions"))

    return bool(terms) and all(pins(t) for t in terms)


def check_required_node_pool(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                             ) -> list[Violation]:
    placement = envelope.placement
    if placement is None or not placement.require_node_pool:
        return []
    selected = map_at(map_at(pod, "spec"), "nodeSelector").get(ctx.pool_label)
    if selected is not None and _pool_allowed(selected, placement.node_pools):
        return []
    if _pinned_by_affinity(pod, envelope, ctx):
        return []
    return [violation(f"spec.nodeSelector{path_key(ctx.pool_label)}",
                      f"must pin the pod to an allowed node pool "
                      f"({_pools_text(placement.node_pools)}), by nodeSelector or required "
                      f"node affinity (Envelope/{envelope.name} requireNodePool)", selected,
                      PLACEMENT)]


def check_pin_removal(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    """An annotation that nulls the pool pin a profile or template set, when pools are
    required: refused early (the final pod would be refused by check_required_node_pool)."""
    placement = envelope.placement
    spec = map_at(pod, "spec")
    if placement is None or not placement.require_node_pool or "nodeSelector" not in spec:
        return []
    selector = spec["nodeSelector"]
    if selector is None:
        return [violation("spec.nodeSelector", "must not be removed: the pod must stay pinned "
                          f"to a node pool (Envelope/{envelope.name} requireNodePool)", None,
                          PLACEMENT)]
    if isinstance(selector, dict) and ctx.pool_label in selector and (
            selector[ctx.pool_label] is None):
        return [violation(f"spec.nodeSelector{path_key(ctx.pool_label)}", "must not be removed: "
                          "the pod must stay pinned to a node pool "
                          f"(Envelope/{envelope.name} requireNodePool)", None, PLACEMENT)]
    return []
