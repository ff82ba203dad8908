"""Envelope: the one place an Envelope's YAML becomes frozen objects (quantities parsed once):
resource bounds, placement, name allowlists, and the secret, volume and label rules."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from webhook.airflow_pods import PodType
from webhook.policy.compile.context import Context, PolicyDocument
from webhook.policy.compile.matches import compile_match
from webhook.policy.model import (
    RESOURCE_FIELDS,
    AffinityRules,
    Bound,
    ClaimRule,
    Envelope,
    LabelRule,
    LabelRules,
    LimitRules,
    NameAllowlist,
    Placement,
    ResourceBounds,
    SecretRules,
    SecretUse,
    Source,
    TemplateLabels,
    TolerationRule,
    VolumeRules,
)


def compile_envelope(ctx: Context, doc: PolicyDocument, name: str, spec: dict) -> Envelope:
    resources = None
    if "resources" in spec:
        section = spec["resources"]
        resources = ResourceBounds(
            per_container=compile_bounds(ctx, doc, "spec.resources.perContainer",
                                         section.get("perContainer", {})),
            per_pod=compile_bounds(ctx, doc, "spec.resources.perPod",
                                   section.get("perPod", {})),
            claim_templates=tuple(section.get("claimTemplates", ())))
    placement = None
    if "placement" in spec:
        section = spec["placement"]
        pools = section.get("nodePools")
        if section.get("requireNodePool") and not pools:
            ctx.error(doc, "spec.placement.nodePools",
                      "requireNodePool needs the list of nodePools a pod may be pinned to")
        placement = Placement(
            node_pools=None if pools is None else tuple(pools),
            require_node_pool=section.get("requireNodePool", False),
            other_node_labels=tuple(section.get("otherNodeLabels", ())),
            tolerations=tuple(TolerationRule(t["key"], tuple(t.get("values", ())),
                                             tuple(t.get("effects", ())))
                              for t in section.get("tolerations", ())))

    def names(key: str) -> NameAllowlist | None:
        if key not in spec:
            return None
        return NameAllowlist(tuple(spec[key]["allowed"]),
                             tuple(spec[key].get("forbidden", ())))

    return Envelope(
        secrets=compile_secret_rules(spec["secrets"]) if "secrets" in spec else None,
        volumes=compile_volume_rules(ctx, doc, spec["volumes"]) if "volumes" in spec else None,
        labels=compile_label_rules(spec["labels"]) if "labels" in spec else None,
        affinity=AffinityRules(tuple(spec["affinity"]["topologyKeys"]),
                               spec["affinity"].get("allowRequired", True))
        if "affinity" in spec else None,
        limits=LimitRules(tuple(spec["limits"]["required"])) if "limits" in spec else None,
        name=name,
        match=compile_match(ctx, doc, spec.get("match")),
        mode=spec.get("mode", "enforce"),
        resources=resources,
        placement=placement,
        priority_class_names=names("priorityClassNames"),
        service_account_names=names("serviceAccountNames"),
        scheduler_names=names("schedulerNames"),
        runtime_class_names=names("runtimeClassNames"),
        verify_locked_fields=spec.get("verifyLockedFields", True),
        source=Source(doc.file, doc.index),
        scheduling_gates=names("schedulingGates"),
    )


def compile_secret_rules(section: dict) -> SecretRules:
    return SecretRules(
        names=NameAllowlist(tuple(section.get("allowed", ("*",))),
                            tuple(section.get("forbidden", ()))),
        template_uses=tuple(SecretUse(
            secret=use["secret"], pod_types=frozenset(PodType(t) for t in use["podTypes"]),
            containers=tuple(use.get("containers", ())), env=tuple(use.get("env", ())),
            volumes=tuple(use.get("volumes", ())))
            for use in section.get("templateUses", ())))


def compile_volume_rules(ctx: Context, doc: PolicyDocument, section: dict) -> VolumeRules:
    def bound(path: str, value: Any) -> Bound | None:
        if value is None:
            return None
        quantity = ctx.quantity(doc, path, value)
        if quantity is not None and not (quantity.is_finite() and quantity >= 0):
            ctx.error(doc, path, f"is not a finite, non-negative quantity: {value!r}")
            return None
        return None if quantity is None else Bound(quantity, str(value))

    ephemeral = section.get("ephemeral", {})
    return VolumeRules(
        types=tuple(section["types"]),
        empty_dir_max=bound("spec.volumes.emptyDir.maxSizeLimit",
                            section.get("emptyDir", {}).get("maxSizeLimit")),
        claims=tuple(ClaimRule(c["claimName"], c.get("readOnly", False))
                     for c in section.get("persistentVolumeClaims", ())),
        storage_classes=tuple(ephemeral.get("storageClasses", ())),
        ephemeral_max=bound("spec.volumes.ephemeral.maxStorage", ephemeral.get("maxStorage")),
        csi_drivers=tuple(section.get("csiDrivers", ())))


def compile_label_rules(section: dict) -> LabelRules:
    return LabelRules(
        forbidden=tuple(LabelRule(r["key"], tuple(r.get("values", ())))
                        for r in section["forbidden"]),
        template_labels=tuple(TemplateLabels(
            frozenset(PodType(t) for t in t_["podTypes"]), tuple(sorted(t_["labels"].items())))
            for t_ in section.get("templateLabels", ())))


def compile_bounds(ctx: Context, doc: PolicyDocument, path: str, section: dict
                   ) -> MappingProxyType:
    out = {}
    for field_name in RESOURCE_FIELDS:
        maxima = {}
        for resource, value in section.get(field_name, {}).items():
            where = f"{path}.{field_name}[{resource}]"
            quantity = ctx.quantity(doc, where, value)
            if quantity is not None and not (quantity.is_finite() and quantity >= 0):
                ctx.error(doc, where, f"is not a finite, non-negative quantity: {value!r}")
            elif quantity is not None:
                maxima[resource] = Bound(quantity, str(value))
        out[field_name] = MappingProxyType(maxima)
    return MappingProxyType(out)
