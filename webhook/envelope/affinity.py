"""envelope: affinity — pod (anti-)affinity and topology spread, bounded.

A required pod anti-affinity whose `namespaceSelector` is empty (every namespace) on
`topologyKey: kubernetes.io/os` keeps matching pods of every namespace off every Linux node.
So each pod affinity and anti-affinity term (required and preferred) and each topology spread
constraint must use an allowed topology key (`topologyKeys`, globs), and a term may look only
at pods of the pod's own namespace: no `namespaceSelector` (an empty one selects every
namespace), and `namespaces` empty or the pod's own. With `allowRequired: false` only
preferred terms and `whenUnsatisfiable: ScheduleAnyway` spreads are allowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from webhook.envelope.context import EnvelopeContext
from webhook.envelope.rule_names import AFFINITY
from webhook.pod.reading import list_at, map_at, spec_of, str_at
from webhook.policy.model import Envelope
from webhook.violations import Violation, violation

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _terms(pod: dict) -> Iterator[tuple[str, dict, bool]]:
    """(path, pod affinity term, required) of every pod (anti-)affinity term."""
    affinity = map_at(spec_of(pod), "affinity")
    for kind in ("podAffinity", "podAntiAffinity"):
        section = map_at(affinity, kind)
        for i, term in enumerate(list_at(section, _REQUIRED)):
            if isinstance(term, dict):
                yield f"spec.affinity.{kind}.{_REQUIRED}[{i}]", term, True
        for i, weighted in enumerate(list_at(section, _PREFERRED)):
            term = map_at(weighted, "podAffinityTerm")
            yield f"spec.affinity.{kind}.{_PREFERRED}[{i}].podAffinityTerm", term, False


def _note(envelope: Envelope) -> str:
    return f"(Envelope/{envelope.name} affinity)"


def _topology_key(path: str, key: object, envelope: Envelope) -> list[Violation]:
    assert envelope.affinity is not None
    allowed = envelope.affinity.topology_keys
    if isinstance(key, str) and any(fnmatchcase(key, p) for p in allowed):
        return []
    return [violation(f"{path}.topologyKey", f"must be an allowed topology key "
                      f"({', '.join(allowed) or 'none'}) {_note(envelope)}", key, AFFINITY)]


def check_pod_affinity(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                       ) -> list[Violation]:
    rules = envelope.affinity
    if rules is None:
        return []
    namespace = ctx.namespace or str_at(map_at(pod, "metadata"), "namespace")
    found = []
    for path, term, required in _terms(pod):
        if required and not rules.allow_required:
            found.append(violation(path, "must be preferred, not required "
                                   f"(allowRequired: false) {_note(envelope)}", term,
                                   AFFINITY))
        found.extend(_topology_key(path, term.get("topologyKey"), envelope))
        if term.get("namespaceSelector") is not None:
            found.append(violation(f"{path}.namespaceSelector", "must not be set: a term may "
                                   "only look at pods of the pod's own namespace (an empty "
                                   f"selector selects every namespace) {_note(envelope)}",
                                   term["namespaceSelector"], AFFINITY))
        others = [n for n in list_at(term, "namespaces") if n != namespace]
        if others:
            found.append(violation(f"{path}.namespaces", "must name only the pod's own "
                                   f"namespace ({namespace or 'its namespace'}) "
                                   f"{_note(envelope)}", list_at(term, "namespaces"),
                                   AFFINITY))
    return found


def check_topology_spread(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                          ) -> list[Violation]:
    rules = envelope.affinity
    if rules is None:
        return []
    found = []
    for i, spread in enumerate(list_at(spec_of(pod), "topologySpreadConstraints")):
        path = f"spec.topologySpreadConstraints[{i}]"
        if not isinstance(spread, dict):
            continue
        found.extend(_topology_key(path, spread.get("topologyKey"), envelope))
        how = spread.get("whenUnsatisfiable")
        if not rules.allow_required and how != "ScheduleAnyway":
            found.append(violation(f"{path}.whenUnsatisfiable", "must be ScheduleAnyway "
                                   f"(allowRequired: false) {_note(envelope)}", how, AFFINITY))
    return found
