"""envelope: volumes — which volumes a pod may mount, and how much storage they hold.

- Only the listed volume types (`types`); any other source (nfs, iscsi, a cloud disk, ...)
  is refused, so no volume type is allowed by omission. hostPath is left to Pod Security
  (baseline: hostPathVolumes) and the `hostPaths` rule, and to the Exemptions that name them:
  one hostPath is not reported twice.
- emptyDir: a `sizeLimit` at most `emptyDir.maxSizeLimit`; a memory-backed one (medium
  Memory, a tmpfs) must state it, since it otherwise grows to the node's memory when a
  container has no memory limit. The pod's emptyDir sizeLimits count in the resources bounds:
  the disk ones in the pod's ephemeral-storage limit, the memory ones in its memory limit.
- persistentVolumeClaim: only claims the admin names (globs), read-only where the admin says
  (the claim source's readOnly, or every mount of it readOnly).
- ephemeral (generic ephemeral volumes): only the listed storage classes (unset: the cluster's
  default class), at most `maxStorage` each, never cloned from another claim or a snapshot
  (dataSource, dataSourceRef) nor bound to an existing volume (volumeName, selector): that
  would copy or reuse another team's data.
- csi (inline CSI volumes): only the listed drivers.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from webhook.envelope.context import EnvelopeContext
from webhook.envelope.rule_names import VOLUMES
from webhook.kube.quantity import parse_quantity, shown_total
from webhook.pod.reading import containers, list_at, map_at, spec_of, str_at
from webhook.policy.model import Bound, Envelope
from webhook.violations import Violation, violation

_RULE = "volumes"


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        quantity = parse_quantity(value)
    except (ValueError, TypeError, ArithmeticError):
        return None
    return quantity if quantity >= 0 else None


def _volumes(pod: dict) -> Iterator[tuple[str, str, dict]]:
    """(path, name, volume) of every volume, named as the pod names it (index if unnamed)."""
    for index, volume in enumerate(list_at(spec_of(pod), "volumes")):
        if isinstance(volume, dict):
            name = str_at(volume, "name")
            yield f"spec.volumes[{name or index}]", name, volume


_NOT_JUDGED = ("name", "hostPath")  # hostPath: Pod Security's


def _types(volume: dict) -> list[str]:
    return sorted(str(k) for k in volume if k not in _NOT_JUDGED)


def _note(envelope: Envelope, what: str) -> str:
    return f"(Envelope/{envelope.name} volumes.{what})"


def check_volume_types(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                       ) -> list[Violation]:
    rules = envelope.volumes
    if rules is None:
        return []
    found = []
    for path, _name, volume in _volumes(pod):
        for kind in _types(volume):
            if volume[kind] is not None and kind not in rules.types:
                found.append(violation(
                    f"{path}.{kind}", f"must be an allowed volume type "
                    f"({', '.join(rules.types) or 'none'}) {_note(envelope, 'types')}",
                    volume[kind], VOLUMES))
    return found


def _over(value: Any, bound: Bound | None) -> bool:
    quantity = _quantity(value)
    return quantity is None or (bound is not None and quantity > bound.value)


def check_empty_dirs(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    rules = envelope.volumes
    if rules is None:
        return []
    found = []
    for path, _name, volume in _volumes(pod):
        if "emptyDir" not in volume or not isinstance(volume["emptyDir"], dict):
            continue
        empty = volume["emptyDir"]
        limit = empty.get("sizeLimit")
        where = f"{path}.emptyDir.sizeLimit"
        bound = rules.empty_dir_max
        if limit is None:
            if str_at(empty, "medium") == "Memory":
                found.append(violation(where, "must be set on a memory-backed emptyDir (a tmpfs "
                                       "grows to the node's memory) " + _note(envelope,
                                                                               "emptyDir"),
                                       None, VOLUMES))
        elif _over(limit, bound):
            most = f"at most {bound.text}" if bound is not None else "a quantity"
            found.append(violation(where, f"must be {most} {_note(envelope, 'emptyDir')}",
                                   limit, VOLUMES))
    return found


def check_empty_dir_totals(pod: dict, envelope: Envelope, ctx: EnvelopeContext
                           ) -> list[Violation]:
    """The emptyDir sizeLimits of a pod, disk ones in ephemeral-storage and memory ones in
    memory, count in the resources bound of the pod's limits."""
    rules, resources = envelope.volumes, envelope.resources
    if rules is None or resources is None:
        return []
    sums = {"ephemeral-storage": Decimal(0), "memory": Decimal(0)}
    for _path, _name, volume in _volumes(pod):
        empty = map_at(volume, "emptyDir")
        quantity = _quantity(empty.get("sizeLimit"))
        if quantity is not None:
            sums["memory" if str_at(empty, "medium") == "Memory" else "ephemeral-storage"] += (
                quantity)
    found = []
    for name, total in sums.items():
        bound = resources.per_pod.get("limits", {}).get(name)
        if bound is not None and total > bound.value:
            found.append(violation(
                "spec.volumes", f"must hold emptyDir sizeLimits totalling at most {bound.text} "
                f"of {name} (Envelope/{envelope.name} perPod limits)", shown_total(name, total),
                VOLUMES))
    return found


def _mounts(pod: dict, volume_name: str) -> list[tuple[str, dict]]:
    return [(container.path, mount) for container in containers(pod)
            for mount in list_at(container.fields, "volumeMounts")
            if isinstance(mount, dict) and str_at(mount, "name") == volume_name]


def check_claims(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    rules = envelope.volumes
    if rules is None:
        return []
    allowed = ", ".join(r.claim_name + (" (read-only)" if r.read_only else "")
                        for r in rules.claims) or "none"
    found = []
    for path, name, volume in _volumes(pod):
        source = volume.get("persistentVolumeClaim")
        if not isinstance(source, dict):
            continue
        claim = str_at(source, "claimName")
        rule = next((r for r in rules.claims if fnmatchcase(claim, r.claim_name)), None)
        if rule is None:
            found.append(violation(f"{path}.persistentVolumeClaim.claimName",
                                   f"must name an allowed claim ({allowed}) "
                                   f"{_note(envelope, 'persistentVolumeClaims')}",
                                   source.get("claimName"), VOLUMES))
        elif rule.read_only and source.get("readOnly") is not True and not ctx.fragment:
            for where, mount in _mounts(pod, name):
                if mount.get("readOnly") is not True:
                    found.append(violation(
                        f"{where}.volumeMounts[{str_at(mount, 'mountPath')}].readOnly",
                        f"must be true: claim {claim} mounts read-only "
                        f"{_note(envelope, 'persistentVolumeClaims')}", mount.get("readOnly"),
                        VOLUMES))
    return found


def check_ephemeral(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    rules = envelope.volumes
    if rules is None:
        return []
    found = []
    for path, _name, volume in _volumes(pod):
        if not isinstance(volume.get("ephemeral"), dict):
            continue
        spec = map_at(map_at(volume["ephemeral"], "volumeClaimTemplate"), "spec")
        where = f"{path}.ephemeral.volumeClaimTemplate.spec"
        for field in ("dataSource", "dataSourceRef"):
            if spec.get(field) is not None:
                found.append(violation(f"{where}.{field}", "must not be set: a clone copies "
                                       "another claim's data " + _note(envelope, "ephemeral"),
                                       spec[field], VOLUMES))
        for field in ("volumeName", "selector"):
            if spec.get(field) is not None:
                found.append(violation(f"{where}.{field}", "must not be set: it binds an "
                                       "existing volume, with the data another claim left on "
                                       "it " + _note(envelope, "ephemeral"), spec[field],
                                       VOLUMES))
        storage_class = spec.get("storageClassName")
        if storage_class is not None and not (isinstance(storage_class, str) and any(
                fnmatchcase(storage_class, p) for p in rules.storage_classes)):
            found.append(violation(f"{where}.storageClassName", "must be an allowed storage "
                                   f"class ({', '.join(rules.storage_classes) or 'none'}) "
                                   + _note(envelope, "ephemeral"), storage_class, VOLUMES))
        asked = map_at(map_at(spec, "resources"), "requests").get("storage")
        bound = rules.ephemeral_max
        if bound is not None and _over(asked, bound):
            found.append(violation(f"{where}.resources.requests.storage",
                                   f"must be at most {bound.text} "
                                   + _note(envelope, "ephemeral"), asked, VOLUMES))
    return found


def check_csi_drivers(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    rules = envelope.volumes
    if rules is None:
        return []
    found = []
    for path, _name, volume in _volumes(pod):
        if not isinstance(volume.get("csi"), dict):
            continue
        driver = str_at(volume["csi"], "driver")
        if not any(fnmatchcase(driver, p) for p in rules.csi_drivers):
            found.append(violation(f"{path}.csi.driver", "must be an allowed CSI driver "
                                   f"({', '.join(rules.csi_drivers) or 'none'}) "
                                   + _note(envelope, "csi"), volume["csi"].get("driver"),
                                   VOLUMES))
    return found
