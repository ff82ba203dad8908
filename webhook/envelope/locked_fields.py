"""envelope: lockedFields — the PodTemplates' locked fields hold on the final pod.

The mutating hook writes the locked values (context.locks_for: one list of locks for both
hooks); here the final pod is held to them, whatever changed it after. A container's
securityContext may not override a locked pod-level one (e.g. seccompProfile Unconfined under
a pod locked to RuntimeDefault). On a Windows pod, no lock requires the Linux-only
securityContext fields Kubernetes forbids there.
"""

from __future__ import annotations

import json
from typing import Any

from webhook.envelope.context import EnvelopeContext, Lock
from webhook.envelope.rule_names import LOCKED_FIELDS
from webhook.kube.windows import LINUX_ONLY_CONTAINER, LINUX_ONLY_POD, is_windows
from webhook.pod.field_paths import Item, Segment, format_path, get_values
from webhook.pod.json_values import json_equal
from webhook.pod.lists import CONTAINER_LISTS
from webhook.pod.reading import Container, containers, map_at
from webhook.policy.model import Envelope
from webhook.violations import Violation, violation

# Pod-level securityContext fields a container's securityContext overrides.
CONTAINER_OVERRIDABLE = ("seccompProfile", "appArmorProfile", "runAsUser", "runAsGroup",
                         "runAsNonRoot", "seLinuxOptions", "windowsOptions")


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
