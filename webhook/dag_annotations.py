"""For DAG authors: the annotations that ask this webhook for changes to a task's pod.

    from kubernetes.client import models as k8s
    from webhook.dag_annotations import override_annotations

    annotations = override_annotations(
        pod=k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(
            name="base", env=[k8s.V1EnvVar(name="MODE", value="full")])])),
        profiles=["highmem", "spot"],
        memory="8Gi",
    )
    # KubernetesExecutor:
    PythonOperator(..., executor_config={"pod_override": k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(annotations=annotations))})
    # KubernetesPodOperator:
    KubernetesPodOperator(..., annotations=annotations)

Only the annotations travel through Airflow: the webhook applies them in the cluster, merged
by name (see webhook/mutation/merge.py) and bounded by the admin's OverridePolicy.

Everything the webhook would refuse for its form is refused here first, with a ValueError
naming the argument, so a DAG fails when it is parsed, not when its task starts: a quantity
Kubernetes does not parse (`"8GB"`), profiles given as one string, an unknown keyword, a pod
fragment with a misspelt field. (Whether the admin's OverridePolicy allows the request is only
known in the cluster.) Imports stay light: no Flask, no server, and the kubernetes client only
to read a V1Pod.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from typing import Any

from webhook.kube.pod_fields import QUALIFIED_NAME
from webhook.kube.quantity_format import is_negative, is_quantity
from webhook.pod.lists import CONTAINER_LISTS
from webhook.policy.model import DEFAULT_ANNOTATION_PREFIX

_QUANTITIES = {"cpu": "cpu", "cpu_limit": "cpu-limit", "memory": "memory",
               "memory_limit": "memory-limit", "ephemeral_storage": "ephemeral-storage",
               "gpu": "gpu"}
KEYWORDS = (*_QUANTITIES, "node_pool", "prefix")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/$")
# Units people write that Kubernetes spells differently: 8GB is 8G (10^9) or 8Gi (2^30).
_UNIT_HINTS = {"KB": ("k", "Ki"), "MB": ("M", "Mi"), "GB": ("G", "Gi"), "TB": ("T", "Ti"),
               "KIB": ("Ki",), "MIB": ("Mi",), "GIB": ("Gi",), "TIB": ("Ti",)}


def override_annotations(
    pod: Any = None,
    profiles: Iterable[str] = (),
    *,
    cpu: str | None = None,
    cpu_limit: str | None = None,
    memory: str | None = None,
    memory_limit: str | None = None,
    ephemeral_storage: str | None = None,
    gpu: str | int | None = None,
    node_pool: str | None = None,
    prefix: str = DEFAULT_ANNOTATION_PREFIX,
    **unknown: Any,
) -> dict[str, str]:
    """The annotations dict for `executor_config` pod_override metadata or KPO `annotations`.

    `pod` is a `kubernetes.client.V1Pod` or a plain dict in the same shape as pod_override.
    Raises ValueError, naming the argument, for anything the webhook would refuse as malformed.
    """
    if unknown:
        name = sorted(unknown)[0]
        close = difflib.get_close_matches(name, KEYWORDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(KEYWORDS)})"
        raise ValueError(f"override_annotations: unknown argument {name!r}{hint}")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ValueError(f"prefix: {prefix!r} must be a DNS name ending in '/', as Settings "
                         "annotationPrefix, e.g. 'airflow-pod-webhook.io/'")
    out: dict[str, str] = {}
    if pod is not None:
        fragment = _pod_fragment(pod)
        if fragment:
            out[prefix + "pod-override"] = json.dumps(fragment, sort_keys=True,
                                                      separators=(",", ":"))
    names = _profile_names(profiles)
    if names:
        out[prefix + "profiles"] = ",".join(names)
    given = {"cpu": cpu, "cpu_limit": cpu_limit, "memory": memory,
             "memory_limit": memory_limit, "ephemeral_storage": ephemeral_storage, "gpu": gpu}
    for argument, value in given.items():
        if value is not None:
            out[prefix + _QUANTITIES[argument]] = _quantity(argument, value)
    if node_pool is not None:
        if not isinstance(node_pool, str) or not node_pool or not QUALIFIED_NAME.match(node_pool) \
                or len(node_pool) > 63:
            raise ValueError(f"node_pool: {node_pool!r} is not a node pool name (a label value: "
                             "at most 63 characters, alphanumeric, '-', '_' or '.')")
        out[prefix + "node-pool"] = node_pool
    return out


def _profile_names(profiles: Any) -> list[str]:
    if isinstance(profiles, (str, bytes)):
        raise ValueError(f"profiles: give a list of profile names, e.g. [{profiles!r}], not a "
                         "string (a string would be read letter by letter)")
    try:
        items = list(profiles)
    except TypeError:
        raise ValueError(f"profiles: {profiles!r} is not a list of profile names") from None
    names = []
    for item in items:
        if not isinstance(item, str) or not item.strip() or "," in item:
            raise ValueError(f"profiles: {item!r} is not a profile name (a non-empty string "
                             "without commas)")
        names.append(item.strip())
    return names


def _quantity(argument: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{argument}: {value!r} must be a quantity string such as "
                         f"{_example(argument)!r}")
    text = str(value).strip()
    if not is_quantity(text):
        raise ValueError(f"{argument}: {value!r} is not a Kubernetes quantity (e.g. "
                         f"{_example(argument)}){_unit_hint(text)}")
    if is_negative(text):
        raise ValueError(f"{argument}: {value!r} must not be negative")
    if argument == "gpu" and not re.fullmatch(r"\+?[0-9]+", text):
        raise ValueError(f"gpu: {value!r} must be a whole number of GPUs")
    return text


def _example(argument: str) -> str:
    return {"cpu": "500m", "cpu_limit": "2", "gpu": "1"}.get(argument, "4Gi")


def _unit_hint(text: str) -> str:
    match = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]+)", text)
    if not match:
        return ""
    hints = _UNIT_HINTS.get(match.group(2).upper())
    if not hints:
        return ""
    return "; did you mean " + " or ".join(repr(match.group(1) + h) for h in hints) + "?"


def _pod_fragment(pod: Any) -> dict:
    """The pod as the annotation carries it, held to the Pod model like the webhook does,
    and normalised as kube-apiserver reads a pod (`normalised_fragment`)."""
    from webhook.kube.pod_fields import fragment_errors

    fragment = _as_dict(pod)
    errors = fragment_errors(fragment)
    if errors:
        path, reason = errors[0]
        raise ValueError(f"pod: {path}: {reason}")
    return normalised_fragment(fragment)


_RESOURCE_MAPS = ("requests", "limits")


def normalised_fragment(fragment: dict) -> dict:
    """What the webhook would otherwise refuse for its form alone, as kube-apiserver reads it:

    - an empty container list is no change (`V1PodSpec` requires `containers`, so a fragment
      that only sets tolerations carries `"containers": []`), and is dropped;
    - a quantity is read with surrounding spaces trimmed (`"2Gi "` is 2Gi to kube-apiserver,
      which trims before parsing), so it is written trimmed.
    """
    spec = fragment.get("spec")
    if not isinstance(spec, dict):
        return fragment
    spec = {k: v for k, v in spec.items() if not (k in CONTAINER_LISTS and v == [])}
    for key in CONTAINER_LISTS:
        if isinstance(spec.get(key), list):
            spec[key] = [_trimmed_resources(c) for c in spec[key]]
    spec = _trimmed_resources(spec)
    out = {**fragment, "spec": spec}
    if not spec:
        del out["spec"]
    return out


def _trimmed_resources(holder: Any) -> Any:
    resources = holder.get("resources") if isinstance(holder, dict) else None
    if not isinstance(resources, dict):
        return holder
    trimmed = dict(resources)
    for key in _RESOURCE_MAPS:
        if isinstance(resources.get(key), dict):
            trimmed[key] = {name: value.strip() if isinstance(value, str) else value
                            for name, value in resources[key].items()}
    return {**holder, "resources": trimmed}


def _as_dict(pod: Any) -> dict:
    if isinstance(pod, dict):
        return pod
    if not hasattr(pod, "openapi_types"):
        raise ValueError(f"pod: give a kubernetes.client V1Pod or a dict shaped like one, not "
                         f"{type(pod).__name__}")
    from kubernetes.client import ApiClient  # only DAG code pays for the client's models

    data = ApiClient().sanitize_for_serialization(pod)
    return data if isinstance(data, dict) else {}
