"""envelope: placement, tolerations — which taints a pod may tolerate.

Tolerations must match an allowed key (and its values and effects); a key-less toleration
(tolerate everything) never does. The DefaultTolerationSeconds tolerations kube-apiserver
adds are always fine.
"""

from __future__ import annotations

from typing import Any

from webhook.envelope.context import EnvelopeContext
from webhook.envelope.rule_names import PLACEMENT
from webhook.kube.tolerations import DEFAULT_TOLERATION_KEYS
from webhook.pod.reading import list_at, map_at, str_at
from webhook.policy.model import Envelope
from webhook.violations import Violation, violation


def toleration_allowed(toleration: Any, envelope: Envelope) -> bool:
    """Whether the envelope allows a toleration; a key-less one (tolerate every taint)
    never is, and the DefaultTolerationSeconds ones always are."""
    if not isinstance(toleration, dict) or envelope.placement is None:
        return False
    key, operator = str_at(toleration, "key"), str_at(toleration, "operator") or "Equal"
    effect = str_at(toleration, "effect")
    if key in DEFAULT_TOLERATION_KEYS and effect == "NoExecute":
        return True
    if not key:
        return False
    for rule in envelope.placement.tolerations:
        if rule.key != key:
            continue
        # Exists tolerates every value, an empty effect every effect: only an unrestricted
        # rule allows them.
        if rule.values and (operator != "Equal" or str_at(toleration, "value") not in rule.values):
            continue
        if rule.effects and effect not in rule.effects:
            continue
        return True
    return False


def check_tolerations(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    if envelope.placement is None:
        return []
    allowed = ", ".join(
        r.key + (f"={'|'.join(r.values)}" if r.values else "")
        + (f":{'|'.join(r.effects)}" if r.effects else "")
        for r in envelope.placement.tolerations) or "none"
    found = []
    for index, toleration in enumerate(list_at(map_at(pod, "spec"), "tolerations")):
        if toleration_allowed(toleration, envelope):
            continue
        keyless = isinstance(toleration, dict) and not str_at(toleration, "key")
        requirement = ("must name a taint key: a key-less toleration tolerates every taint"
                       if keyless else f"must be an allowed toleration ({allowed})")
        found.append(violation(f"spec.tolerations[{index}]", requirement, toleration,
                               PLACEMENT))
    return found
