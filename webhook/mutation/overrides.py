"""DAG authors' override annotations: parsed, then held to the admin's allowlist and envelope.

A task asks for changes with annotations under one prefix (default `airflow-pod-webhook.io/`):

| annotation          | effect on the pod                                                      |
|---------------------|------------------------------------------------------------------------|
| `pod-override`      | a pod fragment (JSON or YAML), the same shape as `pod_override`        |
| `profiles`          | comma-separated Profile names, applied in order                        |
| `cpu`               | base container `resources.requests.cpu`                                |
| `cpu-limit`         | base container `resources.limits.cpu`                                  |
| `memory`            | base container memory request *and* limit (memory is not compressible) |
| `memory-limit`      | base container `resources.limits.memory` (wins over `memory`)          |
| `ephemeral-storage` | base container ephemeral-storage request and limit                     |
| `gpu`               | base container `nvidia.com/gpu` limit (GPUs are requested by limit)    |
| `node-pool`         | `spec.nodeSelector[<Settings nodePoolLabel>]`                          |

Anything an annotation sets that the matching OverridePolicy does not allow, or that lies
outside an enforcing Envelope (the same bounds the validating hook holds the final pod to),
is refused with a message naming the annotation, the field and the rule; nothing is silently
dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from webhook import budget
from webhook.airflow_pods import AIRFLOW_ANNOTATIONS, AIRFLOW_LABELS, AirflowTask, PodType
from webhook.envelope import check_fragment, check_whole_pod
from webhook.hook_selection import MIRROR_POD_ANNOTATION
from webhook.kube.pod_fields import fragment_errors
from webhook.kube.quantity import parse_quantity
from webhook.pod.field_paths import Item, Segment, covers, format_path, leaf_paths
from webhook.policy.model import Envelope, OverridePolicy, PodTemplate, PolicySet

POD_OVERRIDE = "pod-override"
PROFILES = "profiles"
APPLIED = "applied"  # the explain annotation the webhook writes
MAX_OVERRIDE_BYTES = 64 * 1024
_SHORT = ("cpu", "cpu-limit", "memory", "memory-limit", "ephemeral-storage", "gpu", "node-pool")
KNOWN = (POD_OVERRIDE, PROFILES, APPLIED, *_SHORT)
_OWNED_META = ("name", "generateName", "namespace", "uid", "ownerReferences")


@dataclass(frozen=True, order=True)
class Refusal:
    """Why an annotation cannot be applied; `malformed` ones are bad input (HTTP 400)."""

    annotation: str
    field: str
    reason: str
    rule: str
    malformed: bool = False

    @property
    def message(self) -> str:
        where = f"{self.field}: " if self.field else ""
        source = f"annotation {self.annotation}: " if self.annotation else ""
        return f"{source}{where}{self.reason} ({self.rule})"


@dataclass(frozen=True)
class OverrideAnnotation:
    """One annotation turned into the pod fragment it asks for."""

    key: str
    fragment: dict


@dataclass(frozen=True)
class OverrideRequest:
    profiles: tuple[str, ...]
    annotations: tuple[OverrideAnnotation, ...]
    refusals: tuple[Refusal, ...]


class _NoAliasLoader(yaml.SafeLoader):
    """Refuses YAML anchors and aliases: a few bytes of aliases can expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed in annotations", event.start_mark)
        return super().compose_node(parent, index)


class NotJSONNumber(ValueError):
    """Python's json accepts NaN, Infinity and -Infinity; JSON and Kubernetes do not."""


def _refuse_constant(name: str) -> Any:
    raise NotJSONNumber(f"{name} is not a JSON number")


def load_yaml_without_aliases(text: str) -> Any:
    return yaml.load(text, Loader=_NoAliasLoader)


def parse_fragment_text(text: str) -> Any:
    """JSON first (the common case, and what a V1Pod serialises to), then alias-free YAML.
    Raises NotJSONNumber for NaN/Infinity, yaml.YAMLError when neither parses."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except NotJSONNumber:
        raise
    except ValueError:
        return load_yaml_without_aliases(text)


def read_overrides(pod: dict, task: AirflowTask, policies: PolicySet) -> OverrideRequest:
    """Parse every override annotation of a pod; malformed ones become refusals."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    prefix = policies.settings.annotation_prefix
    ours = {k[len(prefix):]: v for k, v in annotations.items()
            if isinstance(k, str) and k.startswith(prefix)}
    refusals: list[Refusal] = []
    fragments: list[OverrideAnnotation] = []
    for name in sorted(set(ours) - set(KNOWN)):
        refusals.append(Refusal(prefix + name, "", "unknown annotation; known ones are "
                                + ", ".join(prefix + k for k in KNOWN if k != APPLIED),
                                "annotations", malformed=True))
    for name, value in ours.items():
        if not isinstance(value, str):
            refusals.append(Refusal(prefix + name, "", "must be a string", "annotations", True))
    profiles = _profiles(ours.get(PROFILES), prefix, policies, refusals)
    if isinstance(ours.get(POD_OVERRIDE), str):
        fragment = _pod_override(ours[POD_OVERRIDE], prefix + POD_OVERRIDE, refusals)
        if fragment is not None:
            fragments.append(OverrideAnnotation(prefix + POD_OVERRIDE, fragment))
    container = base_container_name(pod)
    for name in _SHORT:
        if isinstance(ours.get(name), str):
            fragment = _short(name, ours[name].strip(), container, policies, prefix, refusals)
            if fragment is not None:
                fragments.append(OverrideAnnotation(prefix + name, fragment))
    return OverrideRequest(tuple(profiles), tuple(fragments), tuple(sorted(refusals)))


def base_container_name(pod: dict) -> str:
    """The task's container: `base` in every Airflow pod, else the first one."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    listed = spec.get("containers") if isinstance(spec.get("containers"), list) else []
    containers = [c for c in listed if isinstance(c, dict)]
    names = [c.get("name") for c in containers]
    if "base" in names or not names or not isinstance(names[0], str):
        return "base"
    return names[0]


def _profiles(value: Any, prefix: str, policies: PolicySet, refusals: list[Refusal]
              ) -> list[str]:
    if not isinstance(value, str):
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        if name not in policies.profiles:
            known = ", ".join(sorted(policies.profiles)) or "none are defined"
            refusals.append(Refusal(prefix + PROFILES, "", f"unknown profile {_shown(name)} "
                                    f"(known: {known})", "profiles", malformed=True))
    return [n for n in names if n in policies.profiles]


def _pod_override(text: str, key: str, refusals: list[Refusal]) -> dict | None:
    if len(text.encode()) > MAX_OVERRIDE_BYTES:
        refusals.append(Refusal(key, "", f"is larger than {MAX_OVERRIDE_BYTES} bytes",
                                "annotations", malformed=True))
        return None
    try:
        fragment = parse_fragment_text(text)
    except NotJSONNumber as exc:
        refusals.append(Refusal(key, "", f"is not valid JSON: {exc}", "annotations",
                                malformed=True))
        return None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
        # ValueError/OverflowError: YAML that parses but holds an impossible date (2024-02-30)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        refusals.append(Refusal(key, "", f"is neither JSON nor YAML: {reason}", "annotations",
                                malformed=True))
        return None
    errors = fragment_errors(fragment)
    for field, reason in errors:
        refusals.append(Refusal(key, field, reason, "Pod schema", malformed=True))
    return None if errors else {k: v for k, v in fragment.items()
                                if k not in ("apiVersion", "kind")}


def _short(name: str, value: str, container: str, policies: PolicySet, prefix: str,
           refusals: list[Refusal]) -> dict | None:
    if name == "node-pool":
        if not value:
            refusals.append(Refusal(prefix + name, "", "must name a node pool", "annotations",
                                    malformed=True))
            return None
        return {"spec": {"nodeSelector": {policies.settings.node_pool_label: value}}}
    try:
        amount = parse_quantity(value)
        if amount < 0 or (name == "gpu" and amount != int(amount)):
            raise ValueError("negative, or a fraction of a GPU")
    except (ValueError, TypeError, ArithmeticError):
        refusals.append(Refusal(prefix + name, "", f"{_shown(value)} is not a Kubernetes quantity "
                                "(e.g. 500m, 2, 4Gi)", "annotations", malformed=True))
        return None
    resources = {
        "cpu": {"requests": {"cpu": value}},
        "cpu-limit": {"limits": {"cpu": value}},
        "memory": {"requests": {"memory": value}, "limits": {"memory": value}},
        "memory-limit": {"limits": {"memory": value}},
        "ephemeral-storage": {"requests": {"ephemeral-storage": value},
                              "limits": {"ephemeral-storage": value}},
        "gpu": {"limits": {"nvidia.com/gpu": value}},
    }[name]
    return {"spec": {"containers": [{"name": container, "resources": resources}]}}


def check_allowed(
    request: OverrideRequest,
    task: AirflowTask,
    policy: OverridePolicy | None,
    templates: list[PodTemplate],
    envelopes: Sequence[Envelope] = (),
    pool_label: str = "node-pool",
) -> list[Refusal]:
    """Hold every annotation to the OverridePolicy (which fields), the templates' locked
    fields, and the enforcing Envelopes (how far: the same bounds the validating hook holds
    the final pod to, checked here on the fragment so the refusal names the annotation)."""
    refusals: list[Refusal] = []
    if policy is not None and "*" not in policy.allowed_profiles:
        for name in request.profiles:
            if name not in policy.allowed_profiles:
                refusals.append(Refusal("profiles", "", f"profile {_shown(name)} is not allowed",
                                        f"OverridePolicy/{policy.name} allowedProfiles"))
    for annotation in request.annotations:
        if policy is None:
            refusals.append(Refusal(annotation.key, "", "no OverridePolicy allows DAG-author "
                                    f"overrides in namespace {task.namespace!r}",
                                    "OverridePolicy"))
            continue
        found: list[Refusal] = []
        for path, value in leaf_paths(annotation.fragment):
            budget.check()
            if value == {}:
                continue  # an empty map merges as "nothing to add": it changes nothing
            found.extend(_check_leaf(annotation.key, path, value, task, policy, templates))
        if not found:
            found = _envelope_refusals(annotation, envelopes, pool_label, task.namespace)
        refusals.extend(found)
    return refusals


def check_result(pod: dict, without_annotations: Callable[[], dict], request: OverrideRequest,
                 envelopes: Sequence[Envelope], pool_label: str, templates: list[PodTemplate]
                 ) -> list[Refusal]:
    """What only a whole pod shows (its totals, e.g. a `"*"` container entry times every
    container; the required node pool; locked fields), held against the pod the annotations
    produced: what they broke (compared with the pod built without them, only when something
    is broken) is refused here, naming them, not only by the validating hook."""
    if not request.annotations:
        return []
    keys = ", ".join(a.key for a in request.annotations)
    refusals = []
    for envelope in envelopes:
        if envelope.mode != "enforce":
            continue
        found = check_whole_pod(pod, envelope, pool_label, templates)
        if not found:
            continue
        before = set(check_whole_pod(without_annotations(), envelope, pool_label, templates))
        refusals += [Refusal(keys, v.path, f"{v.requirement}, got "
                             f"{_shown(v.value, limit=120, quote=False)}", v.rule)
                     for v in found if v not in before]
    return refusals


def _envelope_refusals(annotation: OverrideAnnotation, envelopes: Sequence[Envelope],
                       pool_label: str, namespace: str) -> list[Refusal]:
    """Only enforcing envelopes refuse: a warn or audit one is reported on the final pod."""
    return [Refusal(annotation.key, v.path, f"{v.requirement}, got "
                    f"{_shown(v.value, limit=120, quote=False)}", v.rule)
            for envelope in envelopes if envelope.mode == "enforce"
            for v in check_fragment(annotation.fragment, envelope, pool_label, namespace)]


def _check_leaf(key: str, path: tuple[Segment, ...], value: Any, task: AirflowTask,
                policy: OverridePolicy, templates: list[PodTemplate]) -> list[Refusal]:
    field = format_path(path)
    owned = _owned(path, task)
    if owned:
        return [Refusal(key, field, owned, "Airflow-owned field")]
    for template in templates:
        for locked in template.locked:
            if covers(locked, path) or covers(path, locked):
                return [Refusal(key, field, "is locked by the cluster template "
                                f"({format_path(locked)})",
                                f"PodTemplate/{template.name} lockedFields")]
    if not any(covers(allowed, path) for allowed in policy.allowed_fields):
        return [Refusal(key, field, "may not be overridden",
                        f"OverridePolicy/{policy.name} allowedFields")]
    return []


def _owned(path: tuple[Segment, ...], task: AirflowTask) -> str | None:
    texts = [s.key if isinstance(s, Item) else s for s in path]
    if texts == ["metadata"] or texts in (["metadata", "labels"], ["metadata", "annotations"]):
        # A leaf here is null (or a non-map, refused by the schema): it would drop Airflow's
        # labels, which select the pod for the validating hook and identify its task.
        return ("may not be removed or replaced: it holds Airflow's labels and annotations; "
                "set single keys instead")
    if texts[:1] == ["metadata"] and len(texts) > 1:
        if texts[1] in _OWNED_META:
            return "is set by Airflow and kube-apiserver"
        owned = {"labels": AIRFLOW_LABELS, "annotations": AIRFLOW_ANNOTATIONS}.get(texts[1])
        if owned and len(texts) > 2 and texts[2] in owned:
            return "Airflow owns this key (it selects and adopts pods by it)"
        if texts[1:3] == ["annotations", MIRROR_POD_ANNOTATION]:
            return "marks a kubelet mirror pod, which the webhooks never check"
    if (task.pod_type is PodType.EXECUTOR and texts[:3] == ["spec", "containers", "base"]
            and len(texts) > 3 and texts[3] in ("command", "args")):
        return "Airflow sets the task's command; changing it breaks the task"
    return None


def _shown(value: Any, limit: int = 80, quote: bool = True) -> str:
    """A value as a message quotes it: a megabyte annotation must not crowd out the reason."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
