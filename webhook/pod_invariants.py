"""Keep a mutation from turning a pod Kubernetes would accept into one it rejects.

kube-apiserver validates the mutated pod before any validating webhook runs; a default that
makes the pod invalid gives the DAG author a confusing 422 instead of our clear denial. So a
default that conflicts with what the pod already says about itself is taken back, and the
unsafe pod is left for the validating hook to refuse.
"""

from __future__ import annotations

from typing import Any

from webhook.quantity import parse_quantity

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


# Linux-only securityContext fields Kubernetes forbids on `spec.os.name: windows` pods.
_LINUX_ONLY_POD = ("seLinuxOptions", "seccompProfile", "appArmorProfile", "fsGroup",
                   "fsGroupChangePolicy", "sysctls", "runAsUser", "runAsGroup",
                   "supplementalGroups", "supplementalGroupsPolicy", "seLinuxChangePolicy")
_LINUX_ONLY_CONTAINER = ("seLinuxOptions", "seccompProfile", "appArmorProfile", "capabilities",
                         "readOnlyRootFilesystem", "privileged", "allowPrivilegeEscalation",
                         "procMount", "runAsUser", "runAsGroup")


def keep_pod_valid(original: dict, mutated: dict) -> dict:
    """Take back defaults Kubernetes' pod validation would reject."""
    checked = _escalation_consistent(original, mutated)
    checked = _limits_not_below_requests(original, checked)
    return _windows_without_linux_defaults(original, checked)


def _limits_not_below_requests(original: dict, mutated: dict) -> dict:
    """A request above its limit is a 422. When the mutation made it so (a DAG author's `cpu: 4`
    under a template's 2-CPU limit), the limit gives way to the explicit request."""
    spec = mutated.get("spec")
    if not isinstance(spec, dict):
        return mutated
    fixed_spec = None
    for list_name in _CONTAINER_LISTS:
        containers = spec.get(list_name)
        if not isinstance(containers, list):
            continue
        before = _by_name(original, list_name)
        new_list = None
        for i, container in enumerate(containers):
            resources = _raised_limits(container, before.get(container.get("name"))
                                       if isinstance(container, dict) else None)
            if resources is not None:
                new_list = new_list or list(containers)
                new_list[i] = {**container, "resources": resources}
        if new_list is not None:
            fixed_spec = fixed_spec or dict(spec)
            fixed_spec[list_name] = new_list
    return mutated if fixed_spec is None else {**mutated, "spec": fixed_spec}


def _raised_limits(container: Any, before: Any) -> dict | None:
    resources = container.get("resources") if isinstance(container, dict) else None
    if not isinstance(resources, dict):
        return None
    requests, limits = resources.get("requests"), resources.get("limits")
    if not isinstance(requests, dict) or not isinstance(limits, dict):
        return None
    old = before.get("resources") if isinstance(before, dict) else None
    old = old if isinstance(old, dict) else {}
    new_limits = None
    for name, request in requests.items():
        limit = limits.get(name)
        if limit is None or not _less(limit, request):
            continue
        changed = (request != (old.get("requests") or {}).get(name)
                   or limit != (old.get("limits") or {}).get(name))
        if changed:
            new_limits = new_limits or dict(limits)
            new_limits[name] = request
    return None if new_limits is None else {**resources, "limits": new_limits}


def _less(a: Any, b: Any) -> bool:
    try:
        return parse_quantity(a) < parse_quantity(b)
    except (ValueError, TypeError, ArithmeticError):
        return False  # a malformed quantity is Kubernetes' to reject, not ours to guess


def _windows_without_linux_defaults(original: dict, mutated: dict) -> dict:
    """A Windows pod may not carry Linux security settings: drop the ones a default added."""
    spec = mutated.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("os"), dict) or (
            spec["os"].get("name") != "windows"):
        return mutated
    before_spec = original.get("spec") if isinstance(original.get("spec"), dict) else {}
    spec = dict(spec)
    spec["securityContext"] = _without_added(spec.get("securityContext"),
                                             before_spec.get("securityContext"), _LINUX_ONLY_POD)
    for list_name in _CONTAINER_LISTS:
        if not isinstance(spec.get(list_name), list):
            continue
        before = _by_name(original, list_name)
        spec[list_name] = [
            {**c, "securityContext": _without_added(
                c.get("securityContext"), (before.get(c.get("name")) or {}).get("securityContext"),
                _LINUX_ONLY_CONTAINER)}
            if isinstance(c, dict) and isinstance(c.get("securityContext"), dict) else c
            for c in spec[list_name]]
    if spec["securityContext"] is None:
        del spec["securityContext"]
    return {**mutated, "spec": spec}


def _without_added(context: Any, before: Any, fields: tuple[str, ...]) -> Any:
    if not isinstance(context, dict):
        return context
    before = before if isinstance(before, dict) else {}
    return {k: v for k, v in context.items() if k not in fields or k in before}


def _escalation_consistent(original: dict, mutated: dict) -> dict:
    """Undo `allowPrivilegeEscalation: false` where the container is privileged or adds
    CAP_SYS_ADMIN (Kubernetes rejects that combination, ValidateSecurityContext)."""
    spec = mutated.get("spec")
    if not isinstance(spec, dict):
        return mutated
    fixed_spec = None
    for list_name in _CONTAINER_LISTS:
        containers = spec.get(list_name)
        if not isinstance(containers, list):
            continue
        before = _by_name(original, list_name)
        new_list = None
        for i, container in enumerate(containers):
            if not _conflicts(container):
                continue
            previous = _ape(before.get(container.get("name")))
            sc = dict(container["securityContext"])
            if previous is None:
                sc.pop("allowPrivilegeEscalation", None)
            else:
                sc["allowPrivilegeEscalation"] = previous
            new_list = new_list or list(containers)
            new_list[i] = {**container, "securityContext": sc}
        if new_list is not None:
            fixed_spec = fixed_spec or dict(spec)
            fixed_spec[list_name] = new_list
    return mutated if fixed_spec is None else {**mutated, "spec": fixed_spec}


def _conflicts(container: Any) -> bool:
    if not isinstance(container, dict) or not isinstance(container.get("securityContext"), dict):
        return False
    sc = container["securityContext"]
    if sc.get("allowPrivilegeEscalation") is not False:
        return False
    caps = sc.get("capabilities") if isinstance(sc.get("capabilities"), dict) else {}
    added = caps.get("add") if isinstance(caps.get("add"), list) else []
    return sc.get("privileged") is True or any(c in ("SYS_ADMIN", "CAP_SYS_ADMIN") for c in added)


def _ape(container: Any) -> Any:
    if isinstance(container, dict) and isinstance(container.get("securityContext"), dict):
        return container["securityContext"].get("allowPrivilegeEscalation")
    return None


def _by_name(pod: dict, list_name: str) -> dict:
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    items = spec.get(list_name) if isinstance(spec.get(list_name), list) else []
    return {c.get("name"): c for c in items if isinstance(c, dict)}
