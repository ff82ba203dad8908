"""The admin's envelope: the bounds an Airflow pod must lie within, whatever shaped it.

Why one `Envelope` kind, read by both hooks. A DAG author shapes a pod through
pod_template_file, `pod_override`, KubernetesPodOperator arguments and override annotations,
and another mutating webhook may change it after ours. Only the validating hook sees the
final pod, so that is where the bounds hold. The mutating hook reads the *same* Envelope
objects to refuse an annotation early, naming it (`check_fragment`): there is one list of
bounds, so what an annotation may ask and what the final pod may be cannot drift apart.

Modelled on pod-security-admission: one check is one small function
`(pod, envelope, context) -> list[Violation]`, listed once in `ENVELOPE_CHECKS`. Each check
reports under the rule name of its section (`envelope: resources`, `envelope: placement`,
`envelope: priorityClassNames`, ...), which Exemptions name. A section the Envelope leaves out
is not checked. Checks read the pod as Kubernetes decodes it (wrong types count as unset)
and never raise.

- resources: every container (init containers too) and the pod as a whole, requests and
  limits, every resource name: a name the envelope lists nowhere for that field is refused,
  so hugepages, another vendor's GPU or a MIG slice is never unbounded by omission.
  Requests are the effective ones (a limit without a request defaults the request).
  The pod's total is Kubernetes' own (component-helpers PodRequests/PodLimits):
  max(sum(containers) + sum(sidecars), max over init containers of (init + sidecars started
  before it)), and at least the pod-level `spec.resources`. Quantities round up to the
  nano unit, as Kubernetes stores them. RuntimeClass overhead is the admin's, not counted.
- placement: `nodeName` (it bypasses the scheduler and every taint) and node-field
  selectors are refused; `nodeSelector` and node affinity (required and preferred terms) may
  name only the allowed pools on the Settings nodePoolLabel key and the listed other labels;
  `NotIn`/`Exists`/`Gt`/`Lt` on the pool key would admit any pool and are refused when pools
  are listed. With `requireNodePool`, the pod must be pinned to an allowed pool, so dropping a
  profile's pin (`nodeSelector: null`) cannot escape it. Tolerations must match an allowed
  key (and its values and effects); a key-less toleration (tolerate everything) never
  does. The DefaultTolerationSeconds tolerations kube-apiserver adds are always fine.
- priorityClassNames, serviceAccountNames (also the deprecated `serviceAccount`; `forbidden`
  wins over `allowed`), schedulerNames, runtimeClassNames: allowlists of globs.
- lockedFields: the PodTemplates' locked fields hold on the final pod, and a container's
  securityContext may not override a locked pod-level one (e.g. seccompProfile Unconfined
  under a pod locked to RuntimeDefault).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from webhook import budget
from webhook.airflow_pods import PodType
from webhook.kube.quantity import parse_quantity, shown_total
from webhook.kube.windows import LINUX_ONLY_CONTAINER, LINUX_ONLY_POD, is_windows
from webhook.pod.field_paths import Item, Segment, format_path, get_values
from webhook.pod.json_values import json_equal
from webhook.pod.lists import CONTAINER_LISTS
from webhook.pod.reading import (
    Container,
    containers,
    list_at,
    map_at,
    path_key,
    str_at,
)
from webhook.policy.model import RESOURCE_FIELDS, Envelope, NameAllowlist, PodTemplate
from webhook.rules import known
from webhook.validation.airflow_rules import DEFAULT_TOLERATION_KEYS
from webhook.validation.envelope_sections.affinity import (
    AFFINITY,
    check_pod_affinity,
    check_topology_spread,
)
from webhook.validation.envelope_sections.context import Check, EnvelopeContext, Lock
from webhook.validation.envelope_sections.labels import LABELS, check_labels
from webhook.validation.envelope_sections.limits import LIMITS, check_limits
from webhook.validation.envelope_sections.secrets import SECRETS, check_secrets
from webhook.validation.envelope_sections.volumes import (
    VOLUMES,
    check_claims,
    check_csi_drivers,
    check_empty_dir_totals,
    check_empty_dirs,
    check_ephemeral,
    check_volume_types,
)
from webhook.validation.violations import Violation, violation

RESOURCES = known("envelope: resources")
PLACEMENT = known("envelope: placement")
PRIORITY_CLASSES = known("envelope: priorityClassNames")
SERVICE_ACCOUNTS = known("envelope: serviceAccountNames")
SCHEDULERS = known("envelope: schedulerNames")
RUNTIME_CLASSES = known("envelope: runtimeClassNames")
LOCKED_FIELDS = known("envelope: lockedFields")
SCHEDULING_GATES = known("envelope: schedulingGates")
DEFAULT_SCHEDULER = "default-scheduler"  # what the API server defaults an unset name to
# Pod-level securityContext fields a container's securityContext overrides.
CONTAINER_OVERRIDABLE = ("seccompProfile", "appArmorProfile", "runAsUser", "runAsGroup",
                         "runAsNonRoot", "seLinuxOptions", "windowsOptions")
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def locks_for(templates: Iterable[PodTemplate]) -> tuple[Lock, ...]:
    """The locked fields of the templates matching a pod, with the values they hold."""
    out = []
    for template in templates:
        for path in template.locked:
            found = get_values(template.template, path, wildcard=False)
            out.append(Lock(template.name, path, found[0][1] if found else None))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# resources


def kube_quantity(value: Any) -> Decimal | None:
    """A quantity as Kubernetes stores it (parse_quantity rounds up to 1n); None when it is
    not a finite, non-negative quantity (NaN, Infinity and negatives never compare as small)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    return _kube_quantity(type(value), value)


@functools.lru_cache(maxsize=4096)  # pods repeat a few quantities ("1", "2Gi") endlessly
def _kube_quantity(_kind: type, value: str | int | float) -> Decimal | None:
    try:
        quantity = parse_quantity(value)
    except (ValueError, TypeError, ArithmeticError):
        return None
    return quantity if quantity >= 0 else None


def _resource_values(resources: dict, field_name: str, fragment: bool) -> dict:
    """The requests (effective: a limit without a request defaults it) or limits a
    container asks for; in a fragment, only what it writes (null removes, so it is skipped)."""
    values = dict(map_at(resources, field_name))
    if field_name == "requests" and not fragment:
        values = {**map_at(resources, "limits"), **values}
    return {k: v for k, v in values.items() if v is not None}


def _holders(pod: dict) -> Iterable[tuple[str, dict]]:
    """(path, resources) of every container that can hold resources, and the pod level."""
    for container in containers(pod):
        if container.kind != "ephemeralContainers":  # the API forbids resources on them
            yield container.path, map_at(container.fields, "resources")
    if "resources" in map_at(pod, "spec"):
        yield "spec", map_at(map_at(pod, "spec"), "resources")


def _asked(pod: dict, ctx: EnvelopeContext, pod_level: bool = True
           ) -> Iterable[tuple[str, str, str, Any]]:
    """(path, field, resource name, value) of every request and limit, in a stable order."""
    for path, resources in _holders(pod):
        if path == "spec" and not pod_level:
            continue
        for field_name in RESOURCE_FIELDS:
            asked = _resource_values(resources, field_name, ctx.fragment)
            # str keys: a YAML fragment can hold a non-string key, and must not crash a sort
            for name, value in sorted(asked.items(), key=lambda kv: str(kv[0])):
                yield path, field_name, str(name), value


def check_resource_names(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                         ) -> list[Violation]:
    bounds = envelope.resources
    if bounds is None:
        return []
    found = []
    for path, field_name, name, value in _asked(pod, ctx):
        listed = bounds.listed(field_name)
        if name not in listed:
            found.append(violation(
                f"{path}.resources.{field_name}{path_key(name)}",
                f"must not be set: Envelope/{envelope.name} bounds no such resource in "
                f"{field_name} (listed: {', '.join(sorted(listed)) or 'none'})", value,
                RESOURCES))
    return found


def check_resource_claims(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                          ) -> list[Violation]:
    """Devices claimed through dynamic resource allocation (`spec.resourceClaims`) bypass
    requests and limits: only claims from a listed ResourceClaimTemplate are allowed, and a
    pre-made ResourceClaim (`resourceClaimName`) never, since its size is not the pod's."""
    bounds = envelope.resources
    if bounds is None:
        return []
    allowed = ", ".join(bounds.claim_templates) or "none"
    found = []
    for index, claim in enumerate(list_at(map_at(pod, "spec"), "resourceClaims")):
        if not isinstance(claim, dict):
            continue
        path = f"spec.resourceClaims[{str_at(claim, 'name') or index}]"
        template = str_at(claim, "resourceClaimTemplateName")
        if template and any(fnmatchcase(template, p) for p in bounds.claim_templates):
            continue
        value = template or claim.get("resourceClaimName")
        field_name = "resourceClaimTemplateName" if template else "resourceClaimName"
        found.append(violation(
            f"{path}.{field_name}", f"must name an allowed ResourceClaimTemplate (Envelope/"
            f"{envelope.name} resources.claimTemplates: {allowed})", value, RESOURCES))
    return found


def check_container_resources(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                              ) -> list[Violation]:
    bounds = envelope.resources
    if bounds is None:
        return []
    found = []
    # Pod-level resources are a pod total: check_pod_resources judges them.
    for path, field_name, name, value in _asked(pod, ctx, pod_level=False):
        where = f"{path}.resources.{field_name}{path_key(name)}"
        have = kube_quantity(value)
        if have is None:
            found.append(violation(where, "must be a non-negative Kubernetes quantity", value,
                                   RESOURCES))
            continue
        maxima = bounds.per_container.get(field_name, {})
        # One container can never hold more than the whole pod may.
        bound = maxima.get(name) or bounds.per_pod.get(field_name, {}).get(name)
        if bound is not None and have > bound.value:
            scope = "perContainer" if name in maxima else "perPod"
            found.append(violation(where, f"must be at most {bound.text} "
                                          f"(Envelope/{envelope.name} {scope})", value,
                                   RESOURCES))
    return found


def _add(into: dict[str, Decimal], values: Mapping[str, Decimal]) -> None:
    for name, quantity in values.items():
        into[name] = into.get(name, Decimal(0)) + quantity


def _at_least(into: dict[str, Decimal], values: Mapping[str, Decimal]) -> None:
    for name, quantity in values.items():
        into[name] = max(into.get(name, Decimal(0)), quantity)


def _quantities(resources: dict, field_name: str) -> dict[str, Decimal]:
    out = {}
    for name, value in _resource_values(resources, field_name, False).items():
        quantity = kube_quantity(value)
        if quantity is not None:  # a malformed one is reported per container
            out[name] = quantity
    return out


def pod_totals(pod: dict, field_name: str) -> dict[str, Decimal]:
    """The pod's requests or limits as the scheduler and kubelet count them."""
    spec = map_at(pod, "spec")
    total: dict[str, Decimal] = {}
    for entry in list_at(spec, "containers"):
        _add(total, _quantities(map_at(entry, "resources"), field_name))
    sidecars: dict[str, Decimal] = {}
    init_peak: dict[str, Decimal] = {}
    for entry in list_at(spec, "initContainers"):
        own = _quantities(map_at(entry, "resources"), field_name)
        if str_at(entry, "restartPolicy") == "Always":  # a sidecar runs beside everything after
            _add(total, own)
            _add(sidecars, own)
            during = dict(sidecars)
        else:
            during = dict(own)
            _add(during, sidecars)
        _at_least(init_peak, during)
    _at_least(total, init_peak)
    _at_least(total, _quantities(map_at(spec, "resources"), field_name))
    return total


def check_pod_resources(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                        ) -> list[Violation]:
    bounds = envelope.resources
    if bounds is None:
        return []
    found = []
    for field_name in RESOURCE_FIELDS:
        totals = pod_totals(pod, field_name)
        for name, bound in sorted(bounds.per_pod.get(field_name, {}).items()):
            if totals.get(name, Decimal(0)) > bound.value:
                found.append(violation(
                    f"spec.resources.{field_name}{path_key(name)}",
                    f"must total at most {bound.text} for the pod (Envelope/{envelope.name} "
                    "perPod; Kubernetes counts the sum of containers and sidecars, or the "
                    "largest init container if more)", shown_total(name, totals[name]), RESOURCES))
    return found


# ---------------------------------------------------------------------------------------------
# placement


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


# ---------------------------------------------------------------------------------------------
# names: priorityClassName, serviceAccountName, schedulerName, runtimeClassName


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


# ---------------------------------------------------------------------------------------------
# lockedFields


def _lock_violation(path: str, lock: Lock, have: Any, why: str = "") -> Violation:
    want = "be unset" if lock.value is None else f"be {json.dumps(lock.value, sort_keys=True)}"
    return violation(path, f"must {want}{why} (locked by PodTemplate/{lock.template} "
                           f"{format_path(lock.path)})", have, LOCKED_FIELDS)


def _locked_values(pod: dict, lock: Lock) -> list[tuple[str, Any]]:
    """(path, value or None) at a locked path, for each list item the path selects that the
    pod has (a lock on a container the pod lacks has nothing to hold)."""
    items = [i for i, s in enumerate(lock.path) if isinstance(s, Item)]
    cut = items[-1] + 1 if items else 0
    parents = get_values(pod, lock.path[:cut]) if cut else [((), pod)]
    out = []
    for concrete, node in parents:
        found = get_values(node, lock.path[cut:])
        out.append((format_path((*concrete, *lock.path[cut:])), found[0][1] if found else None))
    return out


def _container_overrides(pod: dict, lock: Lock) -> list[tuple[Container, str, Any, Any]]:
    """Container securityContext settings that override a locked pod-level one:
    (container, path, have, locked value)."""
    if lock.path[:2] != ("spec", "securityContext") or lock.value is None:
        return []
    rest = lock.path[2:]
    if rest:
        if rest[0] not in CONTAINER_OVERRIDABLE:
            return []
        locked = [(rest, lock.value)]
    elif isinstance(lock.value, dict):
        locked = [((f,), lock.value[f]) for f in CONTAINER_OVERRIDABLE
                  if lock.value.get(f) is not None]
    else:
        return []
    out = []
    for container in containers(pod):
        context = map_at(container.fields, "securityContext")
        for sub, want in locked:
            found = get_values(context, sub)
            have = found[0][1] if found else None
            if have is not None and not json_equal(have, want):
                out.append((container, f"{container.path}.securityContext."
                                       f"{format_path(sub)}", have, want))
    return out


def _linux_only(path: tuple[Segment, ...]) -> tuple[tuple[str, ...], tuple[Segment, ...]]:
    """The Linux-only fields of the securityContext a lock path lies in, and the path's rest
    below that securityContext; ((), ()) when the path is not in a securityContext."""
    if path[:2] == ("spec", "securityContext"):
        return LINUX_ONLY_POD, path[2:]
    if (len(path) >= 4 and path[0] == "spec" and path[1] in CONTAINER_LISTS
            and isinstance(path[2], Item) and path[3] == "securityContext"):
        return LINUX_ONLY_CONTAINER, path[4:]
    return (), ()


def _without(value: Any, fields: tuple[str, ...]) -> Any:
    return {k: v for k, v in value.items() if k not in fields} if isinstance(value, dict) \
        else value


def lock_for_os(pod: dict, lock: Lock) -> Lock | None:
    """A lock as it holds on this pod: on a Windows pod (spec.os.name=windows), Kubernetes
    forbids the Linux-only securityContext fields, the mutating hook takes back the ones a
    default added, and no lock requires them (None: nothing left to hold)."""
    if not is_windows(pod):
        return lock
    linux, rest = _linux_only(lock.path)
    if not linux:
        return lock
    if rest:
        return None if rest[0] in linux else lock
    return Lock(lock.template, lock.path, _without(lock.value, linux))


def check_locked_fields(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                        ) -> list[Violation]:
    if not envelope.verify_locked_fields:
        return []
    found = []
    for locked in ctx.locks:
        lock = lock_for_os(pod, locked)
        if lock is None:
            continue
        linux = _linux_only(lock.path)[0] if lock is not locked else ()
        for path, found_value in _locked_values(pod, lock):
            have = _without(found_value, linux)
            if not json_equal(have, lock.value):
                found.append(_lock_violation(path, lock, have))
        for _container, path, have, want in _container_overrides(pod, lock):
            sub_lock = Lock(lock.template, lock.path, want)
            found.append(_lock_violation(path, sub_lock, have,
                                         ", as the locked pod-level setting"))
    return found


# The one registry table: check id -> (rule it reports under, where it runs).
ENVELOPE_CHECKS: Mapping[str, tuple[str, Check]] = {
    "resourceNames": (RESOURCES, Check(check_resource_names)),
    "resourceClaims": (RESOURCES, Check(check_resource_claims)),
    "containerResources": (RESOURCES, Check(check_container_resources)),
    "podResources": (RESOURCES, Check(check_pod_resources, on_fragment=False)),
    "nodeName": (PLACEMENT, Check(check_node_name)),
    "nodeSelector": (PLACEMENT, Check(check_node_selector)),
    "nodeAffinity": (PLACEMENT, Check(check_node_affinity)),
    "requiredNodePool": (PLACEMENT, Check(check_required_node_pool, on_fragment=False)),
    "pinRemoval": (PLACEMENT, Check(check_pin_removal, on_pod=False)),
    "tolerations": (PLACEMENT, Check(check_tolerations)),
    "priorityClassName": (PRIORITY_CLASSES, Check(check_priority_class)),
    "serviceAccountName": (SERVICE_ACCOUNTS, Check(check_service_account)),
    "schedulerName": (SCHEDULERS, Check(check_scheduler)),
    "runtimeClassName": (RUNTIME_CLASSES, Check(check_runtime_class)),
    "schedulingGates": (SCHEDULING_GATES, Check(check_scheduling_gates)),
    "lockedFields": (LOCKED_FIELDS, Check(check_locked_fields, on_fragment=False)),
    "secrets": (SECRETS, Check(check_secrets)),
    "volumeTypes": (VOLUMES, Check(check_volume_types)),
    "emptyDirs": (VOLUMES, Check(check_empty_dirs)),
    "emptyDirTotals": (VOLUMES, Check(check_empty_dir_totals, on_fragment=False)),
    "persistentVolumeClaims": (VOLUMES, Check(check_claims)),
    "ephemeralVolumes": (VOLUMES, Check(check_ephemeral)),
    "csiDrivers": (VOLUMES, Check(check_csi_drivers)),
    "labels": (LABELS, Check(check_labels)),
    "podAffinity": (AFFINITY, Check(check_pod_affinity)),
    "topologySpread": (AFFINITY, Check(check_topology_spread)),
    "limits": (LIMITS, Check(check_limits, on_fragment=False)),
}


def _run(pod: Any, envelope: Envelope, ctx: EnvelopeContext, whole_pod_only: bool = False
         ) -> list[Violation]:
    found: set[Violation] = set()
    pod = pod if isinstance(pod, dict) else {}
    for rule, check in ENVELOPE_CHECKS.values():
        if not (check.on_fragment if ctx.fragment else check.on_pod):
            continue
        if whole_pod_only and check.on_fragment:
            continue
        budget.check()
        try:
            found.update(check.run(pod, envelope, ctx))
        except Exception as exc:  # an unreadable pod must not pass silently
            found.add(violation("spec", "must be readable by the envelope checks",
                                type(exc).__name__, rule))
    return sorted(found)


def check_pod(pod: dict, envelope: Envelope, pool_label: str,
              templates: Iterable[PodTemplate] = (), pod_type: PodType | None = None,
              namespace: str = "") -> list[Violation]:
    """Every violation of the envelope on a final pod (what the validating hook judges)."""
    return _run(pod, envelope, EnvelopeContext(pool_label, locks_for(templates),
                                               pod_type=pod_type, namespace=namespace))


def check_whole_pod(pod: dict, envelope: Envelope, pool_label: str,
                    templates: Iterable[PodTemplate] = ()) -> list[Violation]:
    """Only the checks no fragment can be judged by alone (pod totals, the required pool,
    locked fields, limits): the mutating hook runs them on the pod its annotations
    produce."""
    return _run(pod, envelope, EnvelopeContext(pool_label, locks_for(templates)),
                whole_pod_only=True)


def check_fragment(fragment: dict, envelope: Envelope, pool_label: str, namespace: str = ""
                   ) -> list[Violation]:
    """What an annotation's fragment sets outside the envelope, before it is merged, on a
    pod of `namespace`."""
    return _run(fragment, envelope, EnvelopeContext(pool_label, fragment=True,
                                                    namespace=namespace))

