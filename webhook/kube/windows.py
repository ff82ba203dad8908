"""Windows pods: the Linux-only securityContext fields Kubernetes forbids on them.

kube-apiserver rejects a pod with `spec.os.name: windows` that sets any of these (validation
of PodOS, KEP-2802). The mutating hook takes back the ones a default added
(webhook.mutation.pod_invariants), and the envelope's lockedFields never require them on a
Windows pod: both read this one list, so the lock and the envelope cannot disagree.
"""

from __future__ import annotations

from typing import Any

LINUX_ONLY_POD = ("seLinuxOptions", "seccompProfile", "appArmorProfile", "fsGroup",
                  "fsGroupChangePolicy", "sysctls", "runAsUser", "runAsGroup",
                  "supplementalGroups", "supplementalGroupsPolicy", "seLinuxChangePolicy")
LINUX_ONLY_CONTAINER = ("seLinuxOptions", "seccompProfile", "appArmorProfile", "capabilities",
                        "readOnlyRootFilesystem", "privileged", "allowPrivilegeEscalation",
                        "procMount", "runAsUser", "runAsGroup")


def is_windows(pod: Any) -> bool:
    spec = pod.get("spec") if isinstance(pod, dict) else None
    os_ = spec.get("os") if isinstance(spec, dict) else None
    return isinstance(os_, dict) and os_.get("name") == "windows"
