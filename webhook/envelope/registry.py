"""The admin's envelope: the bounds an Airflow pod must lie within, whatever shaped it.

Why one `Envelope` kind, read by both hooks. A DAG author shapes a pod through
pod_template_file, `pod_override`, KubernetesPodOperator arguments and override annotations,
and another mutating webhook may change it after ours. Only the validating hook sees the
final pod, so that is where the bounds hold. The mutating hook reads the *same* Envelope
objects to refuse an annotation early, naming it (`check_fragment`): there is one list of
bounds, so what an annotation may ask and what the final pod may be cannot drift apart.

Modelled on pod-security-admission: one check is one small function
`(pod, envelope, context) -> list[Violation]`, listed once in `ENVELOPE_CHECKS`, and each
section has its module (resources, placement, tolerations, name_allowlists, locked_fields,
secrets, volumes, labels, affinity, limits). Each check reports under the rule name of its
section (rule_names: `envelope: resources`, `envelope: placement`, ...), which Exemptions
name. A section the Envelope leaves out is not checked. Checks read the pod as Kubernetes
decodes it (wrong types count as unset) and never raise; one that does fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webhook import budget
from webhook.airflow_pods import PodType
from webhook.envelope.affinity import check_pod_affinity, check_topology_spread
from webhook.envelope.context import Check, EnvelopeContext, locks_for
from webhook.envelope.labels import check_labels
from webhook.envelope.limits import check_limits
from webhook.envelope.locked_fields import check_locked_fields
from webhook.envelope.name_allowlists import (
    check_priority_class,
    check_runtime_class,
    check_scheduler,
    check_scheduling_gates,
    check_service_account,
)
from webhook.envelope.placement import (
    check_node_affinity,
    check_node_name,
    check_node_selector,
    check_pin_removal,
    check_required_node_pool,
)
from webhook.envelope.resources import (
    check_container_resources,
    check_pod_resources,
    check_resource_claims,
    check_resource_names,
)
from webhook.envelope.rule_names import (
    AFFINITY,
    LABELS,
    LIMITS,
    LOCKED_FIELDS,
    PLACEMENT,
    PRIORITY_CLASSES,
    RESOURCES,
    RUNTIME_CLASSES,
    SCHEDULERS,
    SCHEDULING_GATES,
    SECRETS,
    SERVICE_ACCOUNTS,
    VOLUMES,
)
from webhook.envelope.secrets import check_secrets
from webhook.envelope.tolerations import check_tolerations
from webhook.envelope.volumes import (
    check_claims,
    check_csi_drivers,
    check_empty_dir_totals,
    check_empty_dirs,
    check_ephemeral,
    check_volume_types,
)
from webhook.policy.model import Envelope, PodTemplate
from webhook.rules import require_checked_in
from webhook.violations import Violation, violation

# The one registry table: check id -> (rule it reports under, where it runs).
ENVELOPE_CHECKS: Mapping[str, tuple[str, Check]] = {
    "resourceNames": (RESOURCES, Check(check_resource_names)),
    "resourceClaims": (RESOURCES, Check(check_resource_claims)),
    "containerResources": (RESOURCES, Check(check_container_resources)),
    "podResources": (RESOURCES, Check(check_pod_resources, on_fragment=False)),
    "nodeName": (PLACEMENT, Check(check_node_name)),
    "nodeSelector": (PLACEMENT, Check(check_node_selector)),
    "nodeAffinity": (PLACEMENT, Check(check_node_affinity)),
    "requiredNodePool": (PLACEMENT, Check(check_required_node_pool, on_fragment=False)),
    "pinRemoval": (PLACEMENT, Check(check_pin_removal, on_pod=False)),
    "tolerations": (PLACEMENT, Check(check_tolerations)),
    "priorityClassName": (PRIORITY_CLASSES, Check(check_priority_class)),
    "serviceAccountName": (SERVICE_ACCOUNTS, Check(check_service_account)),
    "schedulerName": (SCHEDULERS, Check(check_scheduler)),
    "runtimeClassName": (RUNTIME_CLASSES, Check(check_runtime_class)),
    "schedulingGates": (SCHEDULING_GATES, Check(check_scheduling_gates)),
    "lockedFields": (LOCKED_FIELDS, Check(check_locked_fields, on_fragment=False)),
    "secrets": (SECRETS, Check(check_secrets)),
    "volumeTypes": (VOLUMES, Check(check_volume_types)),
    "emptyDirs": (VOLUMES, Check(check_empty_dirs)),
    "emptyDirTotals": (VOLUMES, Check(check_empty_dir_totals, on_fragment=False)),
    "persistentVolumeClaims": (VOLUMES, Check(check_claims)),
    "ephemeralVolumes": (VOLUMES, Check(check_ephemeral)),
    "csiDrivers": (VOLUMES, Check(check_csi_drivers)),
    "labels": (LABELS, Check(check_labels)),
    "podAffinity": (AFFINITY, Check(check_pod_affinity)),
    "topologySpread": (AFFINITY, Check(check_topology_spread)),
    "limits": (LIMITS, Check(check_limits, on_fragment=False)),
}
require_checked_in(__name__, (rule for rule, _ in ENVELOPE_CHECKS.values()))


def _run(pod: Any, envelope: Envelope, ctx: EnvelopeContext, whole_pod_only: bool = False
         ) -> list[Violation]:
    found: set[Violation] = set()
    pod = pod if isinstance(pod, dict) else {}
    for rule, check in ENVELOPE_CHECKS.values():
        if not (check.on_fragment if ctx.fragment else check.on_pod):
            continue
        if whole_pod_only and check.on_fragment:
            continue
        budget.check()
        try:
            found.update(check.run(pod, envelope, ctx))
        except Exception as exc:  # an unreadable pod must not pass silently
            found.add(violation("spec", "must be readable by the envelope checks",
                                type(exc).__name__, rule))
    return sorted(found)


def check_pod(pod: dict, envelope: Envelope, pool_label: str,
              templates: Iterable[PodTemplate] = (), pod_type: PodType | None = None,
              namespace: str = "") -> list[Violation]:
    """Every violation of the envelope on a final pod (what the validating hook judges)."""
    return _run(pod, envelope, EnvelopeContext(pool_label, locks_for(templates),
                                               pod_type=pod_type, namespace=namespace))


def check_whole_pod(pod: dict, envelope: Envelope, pool_label: str,
                    templates: Iterable[PodTemplate] = ()) -> list[Violation]:
    """Only the checks no fragment can be judged by alone (pod totals, the required pool,
    locked fields, limits): the mutating hook runs them on the pod its annotations
    produce."""
    return _run(pod, envelope, EnvelopeContext(pool_label, locks_for(templates)),
                whole_pod_only=True)


def check_fragment(fragment: dict, envelope: Envelope, pool_label: str, namespace: str = ""
                   ) -> list[Violation]:
    """What an annotation's fragment sets outside the envelope, before it is merged, on a
    pod of `namespace`."""
    return _run(fragment, envelope, EnvelopeContext(pool_label, fragment=True,
                                                    namespace=namespace))
