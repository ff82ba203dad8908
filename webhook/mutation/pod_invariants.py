"""Keep a mutation from turning a pod Kubernetes would accept into one it rejects.

kube-apiserver validates the mutated pod before any validating webhook runs; a default that
makes the pod invalid gives the DAG author a confusing 422 instead of our clear denial. So a
default that conflicts with what the pod already says about itself is taken back, and the
unsafe pod is left for the validating hook to refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webhook.kube.quantity import parse_quantity
from webhook.kube.windows import LINUX_ONLY_CONTAINER, LINUX_ONLY_POD, is_windows
from webhook.pod.lists import CONTAINER_LISTS

# (the container as mutated, the same container as it came in or {}) -> a fixed copy, or None
ContainerFix = Callable[[dict, dict], "dict | None"]


def keep_pod_valid(original: dict, mutated: dict) -> dict:
    """Take back defaults Kubernetes' pod validation would reject."""
    fixes: list[ContainerFix] = [_escalation_consistent, _limits_not_below_requests]
    if is_windows(mutated):
        fixes.append(_without_linux_container_defaults)
        mutated = _without_linux_pod_defaults(original, mutated)
    return _fix_containers(original, mutated, fixes)


# spec field set by the mutation -> what kube-apiserver's built-in plugins derived from it
# before any webhook ran. A stale derived value makes the create fail ("the integer value of
# priority (0) must not be provided in pod spec"); without it, the plugins, reinvoked after a
# webhook changed the pod, derive it again from the new value.
DERIVED_BY_PLUGINS = {
    "priorityClassName": ("priority", "preemptionPolicy"),  # Priority
    "runtimeClassName": ("overhead",),  # RuntimeClass
}


def let_plugins_recompute(original: dict, mutated: dict) -> dict:
    """Drop what the built-in admission plugins derived from a spec field the mutation
    changed, so that they derive it anew from the mutated value."""
    spec_in = original.get("spec") if isinstance(original.get("spec"), dict) else {}
    spec_out = mutated.get("spec") if isinstance(mutated.get("spec"), dict) else {}
    stale = [derived for source, fields in DERIVED_BY_PLUGINS.items()
             if spec_out.get(source) != spec_in.get(source)
             for derived in fields if derived in spec_out]
    spec = {k: v for k, v in spec_out.items() if k not in stale} if stale else spec_out
    if spec.get("automountServiceAccountToken") is False and (
            spec_in.get("automountServiceAccountToken") is not False):
        spec = _without_token_volume(spec)
    return mutated if spec is spec_out else {**mutated, "spec": spec}


def _without_token_volume(spec: dict) -> dict:
    """The ServiceAccount plugin mounted the token before the mutation turned automounting
    off; it never takes it back, so the mutation does."""
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    names = {v.get("name") for v in volumes if _is_token_volume(v)}
    if not names:
        return spec
    out = {**spec, "volumes": [v for v in volumes if not _is_token_volume(v)]}
    for list_name in CONTAINER_LISTS:
        if isinstance(spec.get(list_name), list):
            out[list_name] = [_without_mounts(c, names) for c in spec[list_name]]
    return out


def _is_token_volume(volume: Any) -> bool:
    """kube-apiserver's `kube-api-access-<random>`: a projected serviceAccountToken volume."""
    if not isinstance(volume, dict) or not str(volume.get("name", "")).startswith(
            "kube-api-access-"):
        return False
    projected = volume.get("projected")
    sources = projected.get("sources") if isinstance(projected, dict) else None
    return isinstance(sources, list) and any(
        isinstance(s, dict) and "serviceAccountToken" in s for s in sources)


def _without_mounts(container: Any, names: set) -> Any:
    if not isinstance(container, dict) or not isinstance(container.get("volumeMounts"), list):
        return container
    mounts = [m for m in container["volumeMounts"]
              if not (isinstance(m, dict) and m.get("name") in names)]
    return {**container, "volumeMounts": mounts}
def keep_limit_only_guarantees(original: dict, defaulted: dict) -> dict:
    """A container that states only a limit gets request = limit from Kubernetes (Guaranteed
    for that resource): a template's default request must not lower that. Applied to the
    templates' defaults only; a profile or an annotation that asks for a request gets it."""
    return _fix_containers(original, defaulted, [_no_default_request_under_own_limit])


def _no_default_request_under_own_limit(container: dict, came_in: dict) -> dict | None:
    if not came_in:
        return None
    old = _map(came_in.get("resources"))
    old_requests, old_limits = _map(old.get("requests")), _map(old.get("limits"))
    resources = _map(container.get("resources"))
    requests = resources.get("requests")
    if not isinstance(requests, dict):
        return None
    dropped = [name for name in requests if name not in old_requests and name in old_limits]
    if not dropped:
        return None
    kept = {k: v for k, v in requests.items() if k not in dropped}
    fixed = {**resources, "requests": kept} if kept else {
        k: v for k, v in resources.items() if k != "requests"}
    return {**container, "resources": fixed}


def _fix_containers(original: dict, mutated: dict, fixes: list[ContainerFix]) -> dict:
    """Apply each fix to every container, copying only what changes."""
    spec = mutated.get("spec")
    if not isinstance(spec, dict):
        return mutated
    fixed_spec = None
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        if not isinstance(containers, list):
            continue
        before = _by_name(original, list_name)
        new_list = None
        for i, container in enumerate(containers):
            if not isinstance(container, dict):
                continue
            came_in = before.get(container.get("name")) or {}
            current = container
            for fix in fixes:
                current = fix(current, came_in) or current
            if current is not container:
                new_list = new_list or list(containers)
                new_list[i] = current
        if new_list is not None:
            fixed_spec = fixed_spec or dict(spec)
            fixed_spec[list_name] = new_list
    return mutated if fixed_spec is None else {**mutated, "spec": fixed_spec}


def _escalation_consistent(container: dict, came_in: dict) -> dict | None:
    """Undo `allowPrivilegeEscalation: false` where the container is privileged or adds
    CAP_SYS_ADMIN (Kubernetes rejects that combination, ValidateSecurityContext)."""
    sc = _map(container.get("securityContext"))
    if sc.get("allowPrivilegeEscalation") is not False:
        return None
    added = _map(sc.get("capabilities")).get("add")
    added = added if isinstance(added, list) else []
    if sc.get("privileged") is not True and not any(
            c in ("SYS_ADMIN", "CAP_SYS_ADMIN") for c in added):
        return None
    previous = _map(came_in.get("securityContext")).get("allowPrivilegeEscalation")
    sc = dict(sc)
    if previous is None:
        sc.pop("allowPrivilegeEscalation", None)
    else:
        sc["allowPrivilegeEscalation"] = previous
    return {**container, "securityContext": sc}


def _limits_not_below_requests(container: dict, came_in: dict) -> dict | None:
    """A request above its limit is a 422. When the mutation made it so (a DAG author's `cpu: 4`
    under a template's 2-CPU limit), the limit gives way to the explicit request."""
    resources = _map(container.get("resources"))
    requests, limits = resources.get("requests"), resources.get("limits")
    if not isinstance(requests, dict) or not isinstance(limits, dict):
        return None
    old = _map(came_in.get("resources"))
    old_requests, old_limits = _map(old.get("requests")), _map(old.get("limits"))
    new_limits = None
    for name, request in requests.items():
        limit = limits.get(name)
        if limit is None or not _less(limit, request):
            continue
        if request != old_requests.get(name) or limit != old_limits.get(name):
            new_limits = new_limits or dict(limits)
            new_limits[name] = request
    return None if new_limits is None else {**container,
                                            "resources": {**resources, "limits": new_limits}}


def _without_linux_container_defaults(container: dict, came_in: dict) -> dict | None:
    sc = container.get("securityContext")
    if not isinstance(sc, dict):
        return None
    kept = _without_added(sc, came_in.get("securityContext"), LINUX_ONLY_CONTAINER)
    return None if kept == sc else {**container, "securityContext": kept}


def _without_linux_pod_defaults(original: dict, mutated: dict) -> dict:
    """A Windows pod may not carry Linux security settings: drop the ones a default added."""
    spec = mutated["spec"]
    sc = spec.get("securityContext")
    if not isinstance(sc, dict):
        return mutated
    before = _map(_map(original.get("spec")).get("securityContext"))
    return {**mutated, "spec": {**spec, "securityContext": _without_added(sc, before,
                                                                          LINUX_ONLY_POD)}}


def _without_added(context: dict, before: Any, fields: tuple[str, ...]) -> dict:
    before = _map(before)
    return {k: v for k, v in context.items() if k not in fields or k in before}


def _less(a: Any, b: Any) -> bool:
    try:
        return parse_quantity(a) < parse_quantity(b)
    except (ValueError, TypeError, ArithmeticError):
        return False  # a malformed quantity is Kubernetes' to reject, not ours to guess


def _map(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _by_name(pod: dict, list_name: str) -> dict:
    items = _map(pod.get("spec")).get(list_name)
    return {c.get("name"): c for c in items if isinstance(c, dict)} if isinstance(
        items, list) else {}
