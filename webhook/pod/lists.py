"""How Kubernetes identifies the items of a pod's lists (the merge keys of its strategic
merge patch), and which lists hold containers."""

from __future__ import annotations

# Field name -> the item fields that identify an item of that list.
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ports": ("containerPort", "protocol"),
    "resizePolicy": ("resourceName",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "hostAliases": ("ip",),
    "resourceClaims": ("name",),
    "claims": ("name",),
    "schedulingGates": ("name",),
    "readinessGates": ("conditionType",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
# Lists whose items have no name: an item is identified by its whole value.
SET_LISTS = frozenset({"tolerations", "envFrom"})
# The pod's container lists, in the order the kubelet starts them.
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
