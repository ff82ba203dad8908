"""Check a pod fragment's fields and types against the Kubernetes Pod model.

kube-apiserver silently drops unknown fields (a typo like `resource:` would do nothing) and
answers a wrong type with a 500 after our patch: both are caught here, with the field's path.
The table comes from the official client's models (tools/gen_pod_fields.py).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from webhook.kube.quantity_format import is_quantity

_QUANTITY_MAPS = ("resources.limits", "resources.requests", "spec.overhead")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
HUGEPAGES_PREFIX = "hugepages-"
# Suggested for a bare `gpu`: the device plugins' own names.
WELL_KNOWN_EXTENDED = ("nvidia.com/gpu", "amd.com/gpu")
_RESOURCE_HELP = ("cpu, memory, ephemeral-storage, hugepages-<size> or a domain/name like "
                  "nvidia.com/gpu")


_CONTAINER_ENUMS = {
    "imagePullPolicy": ("Always", "IfNotPresent", "Never"),
    # Always makes an init container a sidecar; OnFailure and Never come with container
    # restart rules (Kubernetes 1.34).
    "restartPolicy": ("Always", "OnFailure", "Never"),
    "terminationMessagePolicy": ("File", "FallbackToLogsOnError"),
}
# The string fields of the Pod model that take one of a fixed set of values (k8s.io/api/core/v1
# types.go, the `+enum` types): the client's models do not say, so a typo (`Allways`, `Exist`)
# would pass every check here and fail only when kube-apiserver refuses the pod.
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    **{("V1Container", k): v for k, v in _CONTAINER_ENUMS.items()},
    **{("V1EphemeralContainer", k): v for k, v in _CONTAINER_ENUMS.items()},
    ("V1PodSpec", "restartPolicy"): ("Always", "OnFailure", "Never"),
    ("V1PodSpec", "dnsPolicy"): ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
    ("V1PodSpec", "preemptionPolicy"): ("PreemptLowerPriority", "Never"),
    ("V1Toleration", "operator"): ("Exists", "Equal"),
    ("V1Toleration", "effect"): ("NoSchedule", "PreferNoSchedule", "NoExecute"),
    ("V1ContainerPort", "protocol"): ("TCP", "UDP", "SCTP"),
    ("V1NodeSelectorRequirement", "operator"): ("In", "NotIn", "Exists", "DoesNotExist", "Gt",
                                                "Lt"),
    ("V1LabelSelectorRequirement", "operator"): ("In", "NotIn", "Exists", "DoesNotExist"),
    ("V1SeccompProfile", "type"): ("RuntimeDefault", "Unconfined", "Localhost"),
    ("V1AppArmorProfile", "type"): ("RuntimeDefault", "Unconfined", "Localhost"),
    ("V1TopologySpreadConstraint", "whenUnsatisfiable"): ("DoNotSchedule", "ScheduleAnyway"),
    ("V1TopologySpreadConstraint", "nodeAffinityPolicy"): ("Honor", "Ignore"),
    ("V1TopologySpreadConstraint", "nodeTaintsPolicy"): ("Honor", "Ignore"),
    ("V1PodSecurityContext", "fsGroupChangePolicy"): ("OnRootMismatch", "Always"),
    ("V1PodSecurityContext", "supplementalGroupsPolicy"): ("Merge", "Strict"),
    ("V1SecurityContext", "procMount"): ("Default", "Unmasked"),
    ("V1PodOS", "name"): ("linux", "windows"),
    ("V1ContainerResizePolicy", "restartPolicy"): ("NotRequired", "RestartContainer"),
    ("V1HostPathVolumeSource", "type"): ("", "DirectoryOrCreate", "Directory", "FileOrCreate",
                                         "File", "Socket", "CharDevice", "BlockDevice"),
    ("V1VolumeMount", "mountPropagation"): ("None", "HostToContainer", "Bidirectional"),
    ("V1HTTPGetAction", "scheme"): ("HTTP", "HTTPS"),
    ("V1PersistentVolumeClaimSpec", "volumeMode"): ("Filesystem", "Block"),
}


def enum_error(type_ref: str, field: str, value: Any) -> str | None:
    """Why a string field of a fixed set of values has a value outside it, if it does."""
    allowed = ENUMS.get((type_ref, field))
    if allowed is None or not isinstance(value, str) or value in allowed:
        return None
    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.5) or [
        a for a in allowed if a.lower() == value.lower()]
    return (f"must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}"
            + did_you_mean(close[:1]))


@cache
def pod_model() -> dict:
    """The generated Pod model: {"root": type, "types": {type: {field: type_ref}}}."""
    text = resources.files("webhook.kube").joinpath("schema/pod-fields.json").read_text()
    return json.loads(text)



def quantity_map_path(path: str) -> bool:
    """Whether a field path names a map of resource name -> quantity."""
    return path.endswith(_QUANTITY_MAPS)


def resource_name_error(name: Any) -> tuple[str, tuple[str, ...]] | None:
    """(reason, closest valid names) when Kubernetes would reject `name` as a container
    resource (IsStandardContainerResourceName, IsHugePageResourceName, IsExtendedResourceName).
    """
    if not isinstance(name, str) or not name:
        return f"is not a resource name ({_RESOURCE_HELP})", ()
    if name in STANDARD_RESOURCES:
        return None
    if name.startswith(HUGEPAGES_PREFIX):
        size = name[len(HUGEPAGES_PREFIX):]
        if size.strip() == size and is_quantity(size) and not size.startswith(("-", "+")) \
                and any(c in "123456789" for c in size):
            return None
        return (f"hugepages need a page size such as hugepages-2Mi or hugepages-1Gi, "
                f"got {size!r}"), ()
    if "/" not in name:
        known = (*STANDARD_RESOURCES, "hugepages-2Mi", "hugepages-1Gi")
        vendors = tuple(r for r in WELL_KNOWN_EXTENDED if r.split("/")[1] == name.lower())
        return (f"is not a Kubernetes resource name ({_RESOURCE_HELP})",
                vendors + tuple(difflib.get_close_matches(name, known, n=3, cutoff=0.6)))
    prefix, _, rest = name.partition("/")
    if prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io"):
        return ("the kubernetes.io domain holds only Kubernetes' own resources; an extended "
                "resource has its vendor's domain (nvidia.com/gpu)"), ()
    if (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix) or len(rest) > 63
            or not QUALIFIED_NAME.match(rest)):
        return f"is not a valid extended resource name ({_RESOURCE_HELP})", ()
    return None


@dataclass(frozen=True)
class FieldProblem:
    path: str
    reason: str
    at_key: bool = False  # the key itself is wrong (an unknown field, a bad resource name)

    @property
    def key(self) -> str:
        return self.path.rsplit(".", 1)[-1]


def fragment_errors(fragment: Any, path: str = "") -> list[tuple[str, str]]:
    """(field path, reason) for every unknown field or wrong type in a pod fragment."""
    return [(p.path, p.reason) for p in fragment_problems(fragment, path)]


def fragment_problems(fragment: Any, path: str = "", *, unknown_fields: bool = True
                      ) -> list[FieldProblem]:
    """Every unknown field (unless `unknown_fields=False`: a whole pod from a newer cluster may
    carry fields this model lacks) or wrong type in a pod fragment."""
    errors: list[FieldProblem] = []
    if not isinstance(fragment, dict):
        return [FieldProblem(path or "<root>", f"must be an object, got {_json_type(fragment)}")]
    shape = json_shape_errors(fragment, path)
    if shape:
        # the model check below assumes JSON: string keys, finite numbers
        return [FieldProblem(where, reason) for where, reason in shape]
    body = {k: v for k, v in fragment.items() if k not in ("apiVersion", "kind")}
    _check(body, pod_model()["root"], path, errors, unknown_fields)
    return errors


def json_shape_errors(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Where a parsed fragment holds what JSON cannot (YAML gives keys that are numbers or
    booleans, dates, sets, binary; both give NaN and Infinity): Kubernetes would refuse it,
    and our merge and patch must never see it. Iterative: depth is bounded by the parser."""
    errors: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    errors.append((f"{where}.{key!r}" if where else repr(key),
                                   f"map keys must be strings, got {_json_type(key)} {key!r} "
                                   "(quote it)"))
                    continue
                stack.append((sub, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            errors.append((where or "<root>", f"{item!r} is not a number Kubernetes accepts "
                           "(NaN and Infinity are not JSON)"))
        elif item is not None and not isinstance(item, (str, int, float, bool)):
            errors.append((where or "<root>", f"must be a JSON value, got "
                           f"{type(item).__name__} {str(item)[:40]!r} (quote it)"))
    return sorted(errors)


def _check(value: Any, type_ref: Any, path: str, errors: list[FieldProblem],
           unknown: bool) -> None:
    if value is None:
        return  # null removes a field: valid anywhere
    if isinstance(type_ref, dict) and "list" in type_ref:
        if not isinstance(value, list):
            errors.append(FieldProblem(path, f"must be a list, got {_json_type(value)}"))
            return
        for i, item in enumerate(value):
            label = item.get("name") if isinstance(item, dict) else None
            _check(item, type_ref["list"], f"{path}[{label if label else i}]", errors, unknown)
        return
    if isinstance(type_ref, dict) and "map" in type_ref:
        if not isinstance(value, dict):
            errors.append(FieldProblem(path, f"must be a map, got {_json_type(value)}"))
            return
        if quantity_map_path(path):
            # Quantities may be written as numbers (`cpu: 1`): kube-apiserver accepts both.
            errors.extend(_quantity_errors(value, path))
            return
        for key, item in value.items():
            _check(item, type_ref["map"], f"{path}.{key}", errors, unknown)
        return
    if isinstance(type_ref, str) and type_ref in pod_model()["types"]:
        if not isinstance(value, dict):
            errors.append(FieldProblem(path, f"must be an object, got {_json_type(value)}"))
            return
        fields = pod_model()["types"][type_ref]
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if key in fields:
                _check(item, fields[key], sub, errors, unknown)
                bad_value = enum_error(type_ref, key, item)
                if bad_value:
                    errors.append(FieldProblem(sub, bad_value))
            elif unknown:
                errors.append(FieldProblem(
                    sub, "is not a field of " + _kind_name(type_ref) + did_you_mean(
                        difflib.get_close_matches(str(key), fields, n=3, cutoff=0.6)), True))
        return
    reason = _scalar_error(value, type_ref)
    if reason:
        errors.append(FieldProblem(path, reason))


def did_you_mean(suggestions: Any) -> str:
    """`; did you mean 'x'?` (or `'x' or 'y'`), the same tail in every message; "" for none."""
    names = [repr(s) for s in suggestions]
    return f"; did you mean {' or '.join(names)}?" if names else ""


def _quantity_errors(value: dict, path: str) -> list[FieldProblem]:
    out = []
    for key, item in value.items():
        bad_name = resource_name_error(key)
        if bad_name is not None:
            reason, suggestions = bad_name
            out.append(FieldProblem(f"{path}.{key}", reason + did_you_mean(suggestions), True))
            continue
        if not is_quantity(item):
            out.append(FieldProblem(f"{path}.{key}", f"is not a Kubernetes quantity: {item!r}"))
    return out


def _scalar_error(value: Any, type_ref: str) -> str | None:
    ok = {
        "str": isinstance(value, str),
        "datetime": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        # IntOrString and quantities
        "object": isinstance(value, (str, int, float)) and not isinstance(value, bool),
    }.get(type_ref, True)
    if ok:
        return None
    wanted = {"str": "a string", "datetime": "a timestamp string", "bool": "true or false",
              "int": "an integer", "float": "a number", "object": "a string or a number"}
    return f"must be {wanted.get(type_ref, type_ref)}, got {_json_type(value)}"


def _kind_name(type_ref: str) -> str:
    return type_ref.removeprefix("V1").removeprefix("CoreV1")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "list", str: "string", int: "integer", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)
