"""envelope: resources — requests and limits, per container and for the pod.

Every container (init containers too) and the pod as a whole, requests and limits, every
resource name: a name the envelope lists nowhere for that field is refused, so hugepages,
another vendor's GPU or a MIG slice is never unbounded by omission. Requests are the effective
ones (a limit without a request defaults the request). The pod's total is Kubernetes' own
(component-helpers PodRequests/PodLimits): max(sum(containers) + sum(sidecars), max over init
containers of (init + sidecars started before it)), and at least the pod-level
`spec.resources`. Quantities round up to the nano unit, as Kubernetes stores them.
RuntimeClass overhead is the admin's, not counted. Devices claimed through dynamic resource
allocation come only from listed ResourceClaimTemplates.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from webhook.envelope.context import EnvelopeContext
from webhook.envelope.rule_names import RESOURCES
from webhook.kube.quantity import parse_quantity, shown_total
from webhook.pod.reading import containers, list_at, map_at, path_key, str_at
from webhook.policy.model import RESOURCE_FIELDS, Envelope
from webhook.violations import Violation, violation


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
