"""Turn a pod as the API server returns it back into the pod its creator submitted.

Only what can be proven to come from the API server is removed (see README, "Adopt it on a
running cluster", for what cannot be recovered):
- system metadata (uid, resourceVersion, creationTimestamp, generation, managedFields, ...),
  `status`, and `spec.nodeName` (the scheduler's binding);
- this webhook's own explain annotation, so a pod it already mutated is judged afresh;
- the ServiceAccount plugin's `kube-api-access-*` projected token volume and its mounts;
- DefaultTolerationSeconds' not-ready/unreachable NoExecute 300 s tolerations;
- `priority` (the Priority plugin refuses a creator-set value that differs from the class);
- fields whose value equals the API server's default (`enableServiceLinks: true`,
  `terminationMessagePath: /dev/termination-log`, ...): re-created, they default again;
- what the API server never stores (Go's omitempty): empty lists, empty map-typed fields,
  empty strings and false plain booleans, so a submitted `tolerations: []` or
  `hostNetwork: false` and the stored pod without them agree.
"""

from __future__ import annotations

import re
from typing import Any

from webhook.pod.lists import CONTAINER_LISTS

SYSTEM_METADATA = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                   "deletionGracePeriodSeconds", "generation", "selfLink", "managedFields")
TOKEN_VOLUME = re.compile(r"^kube-api-access-[a-z0-9]{5}$")
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DEFAULT_TOLERATIONS = tuple(
    {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"))
# k8s.io/kubernetes pkg/apis/core/v1/defaults.go: values the API server fills in when unset.
POD_DEFAULTS = {"dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
                "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
                "serviceAccountName": "default"}
CONTAINER_DEFAULTS = {"terminationMessagePath": "/dev/termination-log",
                      "terminationMessagePolicy": "File"}
PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                  "failureThreshold": 3}
DEFAULT_MODE = 420  # 0644, defaulted on secret, configMap, downwardAPI and projected volumes
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
# Map-typed fields (Go maps, omitempty): an empty one is never stored. Pointer structs such as
# `affinity: {}` or `emptyDir: {}` are stored as written and are kept.
# `resources: {}` is stored, but means the same as no `resources`, so it goes too.
EMPTY_MAPS_DROPPED = frozenset({"labels", "annotations", "nodeSelector", "limits", "requests",
                                "overhead", "resources"})

# Go `bool` (not `*bool`) fields of the Pod API: false is their zero value, never stored.
PLAIN_BOOLS = frozenset({"hostNetwork", "hostPID", "hostIPC", "stdin", "stdinOnce", "tty",
                         "readOnly"})
FREE_FORM_MAPS = frozenset({"labels", "annotations", "nodeSelector", "data"})


def submitted_pod(pod: dict, explain_annotation: str = "") -> dict:
    """The pod as its creator sent it, as far as it can be recovered. Never mutates `pod`."""
    out = {k: v for k, v in pod.items() if k != "status"}
    meta = dict(out.get("metadata") or {}) if isinstance(out.get("metadata"), dict) else {}
    for key in SYSTEM_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if explain_annotation and isinstance(annotations, dict) and explain_annotation in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != explain_annotation}
    out["metadata"] = meta
    spec = out.get("spec")
    if isinstance(spec, dict):
        out["spec"] = _spec(spec)
    return _drop_empty(out, None)


def _spec(spec: dict) -> dict:
    spec = {k: v for k, v in spec.items()
            if k not in ("nodeName", "priority") and POD_DEFAULTS.get(k, _NONE) != v}
    if spec.get("serviceAccount") == spec.get("serviceAccountName", "default"):
        spec.pop("serviceAccount")  # the deprecated alias, copied by the API server
    if spec.get("securityContext") == {}:
        spec.pop("securityContext")  # defaulted to {} when absent
    volumes = spec.get("volumes")
    token_volumes: set[str] = set()
    if isinstance(volumes, list):
        token_volumes = {v["name"] for v in volumes if _is_token_volume(v)}
        spec["volumes"] = [_volume(v) for v in volumes
                           if not (isinstance(v, dict) and v.get("name") in token_volumes)]
    for key in CONTAINER_LISTS:
        if isinstance(spec.get(key), list):
            spec[key] = [_container(c, token_volumes) if isinstance(c, dict) else c
                         for c in spec[key]]
    tolerations = spec.get("tolerations")
    if isinstance(tolerations, list):
        spec["tolerations"] = [t for t in tolerations if t not in DEFAULT_TOLERATIONS]
    return spec


_NONE = object()


def _is_token_volume(volume: Any) -> bool:
    """The ServiceAccount admission plugin's volume: its name pattern and its three sources."""
    if not isinstance(volume, dict) or not TOKEN_VOLUME.match(str(volume.get("name", ""))):
        return False
    projected = volume.get("projected")
    sources = projected.get("sources") if isinstance(projected, dict) else None
    if not isinstance(sources, list) or len(sources) != 3:
        return False
    kinds = [next(iter(s), None) if isinstance(s, dict) and len(s) == 1 else None
             for s in sources]
    root_ca = sources[1].get("configMap") if isinstance(sources[1], dict) else None
    return (kinds == ["serviceAccountToken", "configMap", "downwardAPI"]
            and isinstance(root_ca, dict) and root_ca.get("name") == ROOT_CA_CONFIGMAP)


def _volume(volume: Any) -> Any:
    if not isinstance(volume, dict):
        return volume
    out = dict(volume)
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        body = out.get(source)
        if isinstance(body, dict) and body.get("defaultMode") == DEFAULT_MODE:
            out[source] = {k: v for k, v in body.items() if k != "defaultMode"}
    host_path = out.get("hostPath")
    if isinstance(host_path, dict) and host_path.get("type") == "":
        out["hostPath"] = {k: v for k, v in host_path.items() if k != "type"}
    return out


def default_pull_policy(image: Any) -> str:
    """Always for `:latest` or an image with neither tag nor digest, else IfNotPresent."""
    if not isinstance(image, str):
        return ""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _container(container: dict, token_volumes: set[str]) -> dict:
    out = {k: v for k, v in container.items() if CONTAINER_DEFAULTS.get(k, _NONE) != v}
    if out.get("imagePullPolicy") == default_pull_policy(out.get("image")):
        out.pop("imagePullPolicy")
    mounts = out.get("volumeMounts")
    if isinstance(mounts, list) and token_volumes:
        out["volumeMounts"] = [
            m for m in mounts
            if not (isinstance(m, dict) and m.get("name") in token_volumes
                    and m.get("mountPath") == TOKEN_MOUNT_PATH)]
    ports = out.get("ports")
    if isinstance(ports, list):
        out["ports"] = [{k: v for k, v in p.items() if not (k == "protocol" and v == "TCP")}
                        if isinstance(p, dict) else p for p in ports]
    for probe in PROBES:
        if isinstance(out.get(probe), dict):
            out[probe] = _probe(out[probe])
    return out


def _probe(probe: dict) -> dict:
    out = {k: v for k, v in probe.items() if PROBE_DEFAULTS.get(k, _NONE) != v}
    http = out.get("httpGet")
    if isinstance(http, dict) and http.get("scheme") == "HTTP":
        out["httpGet"] = {k: v for k, v in http.items() if k != "scheme"}
    return out


def _drop_empty(value: Any, key: str | None) -> Any:
    """Drop what the API server never stores (omitempty): empty lists, empty map-typed fields,
    empty strings, and false in the plain (non-pointer) booleans."""
    if isinstance(value, dict):
        if key in FREE_FORM_MAPS:
            return value  # user keys and values: `team: ""` is a label like any other
        out = {}
        for k, v in value.items():
            v = _drop_empty(v, k)
            if (v == [] or v == "" or (v == {} and k in EMPTY_MAPS_DROPPED)
                    or (v is False and k in PLAIN_BOOLS)):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_drop_empty(v, None) for v in value]
    return value
