"""Compare a pod the API server stored with the pod the offline core predicts.

The API server changes a pod in three ways our offline `mutate` cannot know about: it fills
defaults (imagePullPolicy, terminationMessagePath, dnsPolicy, ...), its built-in admission
plugins add things (DefaultTolerationSeconds' tolerations, Priority's `priority: 0`), and it
assigns identity (uid, resourceVersion, creationTimestamp, managedFields). The allowance is not
a hand-kept list of fields: `server_defaulted` asks the same API server to store the predicted
pod, dry-run, in a namespace our webhooks skip, so the exact same defaults and plugins apply;
only identity fields, the namespace and the order of tolerations (the plugins add theirs
before any webhook, a dry run of the finished pod after it) are set aside.
"""

from __future__ import annotations

import copy
import json
from typing import Any

# Assigned per object by the API server, never by defaulting: they differ between any two pods.
SERVER_ASSIGNED = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")
# Our namespaceSelector skips kube-system (tests/e2e/test_offline.py pins that).
UNWATCHED_NAMESPACE = "kube-system"


def server_defaulted(core_api: Any, pod: dict) -> dict:
    """`pod` as the API server would store it with no webhook acting on it (dry run)."""
    body = copy.deepcopy(pod)
    body["metadata"]["namespace"] = UNWATCHED_NAMESPACE
    response = core_api.create_namespaced_pod(UNWATCHED_NAMESPACE, body=body, dry_run="All",
                                              _preload_content=False)
    return json.loads(response.data)


def comparable(pod: dict) -> dict:
    """`pod` without identity fields and namespace, tolerations in a canonical order."""
    out = copy.deepcopy(pod)
    meta = out.get("metadata") or {}
    for key in (*SERVER_ASSIGNED, "namespace"):
        meta.pop(key, None)
    spec = out.get("spec") or {}
    if "tolerations" in spec:
        spec["tolerations"] = sorted(spec["tolerations"],
                                     key=lambda t: json.dumps(t, sort_keys=True))
    out.pop("status", None)  # a create stores status.phase Pending; a dry run may too
    return out


def differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Every path where `got` differs from `want`, with both values; [] when equal."""
    if isinstance(got, dict) and isinstance(want, dict):
        out = []
        for key in sorted(set(got) | set(want)):
            where = f"{path}.{key}" if path else key
            if key not in want:
                out.append(f"{where}: unexpected {got[key]!r}")
            elif key not in got:
                out.append(f"{where}: missing, expected {want[key]!r}")
            else:
                out.extend(differences(got[key], want[key], where))
        return out
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True))
                for d in differences(g, w, f"{path}[{i}]")]
    return [] if got == want else [f"{path}: got {got!r}, expected {want!r}"]
