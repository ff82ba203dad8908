"""The compiled, immutable policy set the mutating and validating hooks read."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fnmatch import fnmatchcase, translate
from functools import cached_property
from types import MappingProxyType
from typing import Any

from webhook.airflow_accounts import username_matcher
from webhook.airflow_pods import AirflowTask, PodType
from webhook.pod.field_paths import Segment

DEFAULT_ANNOTATION_PREFIX = "airflow-pod-webhook.io/"
AIRFLOW_POD_TYPES = frozenset({PodType.EXECUTOR, PodType.KPO})


@functools.lru_cache(maxsize=1024)
def _globs(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))


def matches_any(name: str, patterns: tuple[str, ...]) -> bool:
    """fnmatchcase against any of the globs, in one compiled regex per list (a pod names
    dozens of Secrets and labels, an envelope lists dozens of globs)."""
    return bool(patterns) and _globs(patterns).match(name) is not None


@dataclass(frozen=True)
class LabelSelector:
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels):
            return False
        for key, op, values in self.match_expressions:
            present = key in labels
            ok = {
                "In": present and labels.get(key) in values,
                "NotIn": not present or labels.get(key) not in values,
                "Exists": present,
                "DoesNotExist": not present,
            }[op]
            if not ok:
                return False
        return True


@dataclass(frozen=True)
class Match:
    """Which pods a policy applies to. Empty lists mean "any"."""

    pod_types: frozenset[PodType] = AIRFLOW_POD_TYPES
    namespaces: tuple[str, ...] = ()
    dag_ids: tuple[str, ...] = ()
    task_ids: tuple[str, ...] = ()
    selector: LabelSelector | None = None

    def matches(self, task: AirflowTask) -> bool:
        if task.pod_type not in self.pod_types:
            return False
        # Foreign pods are only ever covered through an explicit label selector.
        if task.pod_type is PodType.OTHER and self.selector is None:
            return False
        if self.namespaces and not any(fnmatchcase(task.namespace, p) for p in self.namespaces):
            return False
        if self.dag_ids and not any(task.matches_dag(p) for p in self.dag_ids):
            return False
        if self.task_ids and not any(task.matches_task(p) for p in self.task_ids):
            return False
        return self.selector is None or self.selector.matches(task.labels or {})

    def grants(self, task: AirflowTask) -> bool:
        """matches(), for a policy that gives something (Exemption, TaskPolicy,
        OverridePolicy): scoped only by what the pod's author cannot choose. DAG and task ids
        count only where Airflow's scheduler wrote them (`task.ids_trusted`); labels never
        count on an Airflow pod (pod_override and KPO `labels=` write them)."""
        if task.unmarked or not self.matches(task):
            return False  # an unmarked pod is its author's alone: nothing is granted to it
        if task.pod_type is PodType.OTHER:
            return True  # only reachable through an explicit selector the admin chose
        if self.selector is not None:
            return False
        scoped = any(p != "*" for p in (*self.dag_ids, *self.task_ids))
        return not scoped or task.ids_trusted


@dataclass(frozen=True)
class Source:
    """Where a policy came from, for messages and the explain annotation."""

    file: str
    index: int


@dataclass(frozen=True)
class PodTemplate:
    name: str
    match: Match
    priority: int
    template: Mapping[str, Any]
    locked: tuple[tuple[Segment, ...], ...]
    source: Source


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    match: Match
    template: Mapping[str, Any]
    source: Source


@dataclass(frozen=True)
class TaskPolicy:
    name: str
    match: Match
    template: Mapping[str, Any]
    source: Source


@dataclass(frozen=True)
class TolerationRule:
    key: str
    values: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()


@dataclass(frozen=True)
class OverridePolicy:
    """Which fields DAG authors' annotations may set. How far they may go is the Envelope's
    (one list of bounds for the annotation and the final pod, see webhook.envelope)."""

    name: str
    match: Match
    allowed_fields: tuple[tuple[Segment, ...], ...]
    allowed_profiles: tuple[str, ...]
    source: Source


@dataclass(frozen=True)
class Bound:
    """A maximum quantity, and the text the admin wrote for it (messages quote that)."""

    value: Decimal
    text: str


RESOURCE_FIELDS = ("requests", "limits")


@dataclass(frozen=True)
class ResourceBounds:
    """Maxima by field (`requests`, `limits`) then resource name, per container and per pod.

    A resource name listed nowhere for a field is refused in that field (`unlisted: refuse`,
    the only choice): a new vendor's GPU or a hugepages size is never unbounded by omission.
    """

    per_container: Mapping[str, Mapping[str, Bound]]
    per_pod: Mapping[str, Mapping[str, Bound]]
    # ResourceClaimTemplates (globs) a pod may claim devices from (dynamic resource
    # allocation): devices outside requests and limits, so none unless listed.
    claim_templates: tuple[str, ...] = ()

    def listed(self, field_name: str) -> frozenset[str]:
        return frozenset(self.per_container.get(field_name, {})) | frozenset(
            self.per_pod.get(field_name, {}))


@dataclass(frozen=True)
class Placement:
    node_pools: tuple[str, ...] | None  # allowed values of Settings nodePoolLabel; None: any
    require_node_pool: bool
    other_node_labels: tuple[str, ...]  # node label keys (globs) allowed besides the pool key
    tolerations: tuple[TolerationRule, ...]


@dataclass(frozen=True)
class NameAllowlist:
    allowed: tuple[str, ...]  # globs
    forbidden: tuple[str, ...] = ()  # globs; win over `allowed`

    def admits(self, name: str) -> bool:
        return not matches_any(name, self.forbidden) and matches_any(name, self.allowed)


@dataclass(frozen=True)
class SecretUse:
    """Where the admin's pod_template_file itself references one of Airflow's own Secrets:
    only pods of these types, only in these containers' env variables or these volumes."""

    secret: str  # glob
    pod_types: frozenset[PodType]
    containers: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretRules:
    names: NameAllowlist  # Secrets a pod may reference (globs), `forbidden` winning
    template_uses: tuple[SecretUse, ...] = ()


@dataclass(frozen=True)
class ClaimRule:
    claim_name: str  # glob
    read_only: bool = False  # true: every mount of the claim must be read-only


@dataclass(frozen=True)
class VolumeRules:
    types: tuple[str, ...]  # volume sources a pod may use (emptyDir, configMap, ...)
    empty_dir_max: Bound | None = None  # the largest sizeLimit of one emptyDir
    claims: tuple[ClaimRule, ...] = ()
    storage_classes: tuple[str, ...] = ()  # generic ephemeral volumes: classes (globs)
    ephemeral_max: Bound | None = None  # ... and the storage one may request
    csi_drivers: tuple[str, ...] = ()  # inline CSI volumes: drivers (globs)


@dataclass(frozen=True)
class LabelRule:
    key: str  # glob
    values: tuple[str, ...] = ()  # empty: every value


@dataclass(frozen=True)
class TemplateLabels:
    """Labels the admin's pod_template_file itself sets, allowed on pods of these types."""

    pod_types: frozenset[PodType]
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LabelRules:
    forbidden: tuple[LabelRule, ...]
    template_labels: tuple[TemplateLabels, ...] = ()
    keys: tuple[str, ...] = field(init=False)  # the forbidden rules' key globs

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(r.key for r in self.forbidden))


@dataclass(frozen=True)
class AffinityRules:
    topology_keys: tuple[str, ...]  # globs
    allow_required: bool = True  # false: only preferred terms and ScheduleAnyway spreads


@dataclass(frozen=True)
class LimitRules:
    required: tuple[str, ...]  # resource names every container must set a limit for


@dataclass(frozen=True)
class Envelope:
    """The admin's bounds on an Airflow pod, judged on the final pod by the validating hook
    and read by the mutating hook to refuse an annotation early. A section left out (None)
    is not checked."""

    name: str
    match: Match
    mode: str
    resources: ResourceBounds | None
    placement: Placement | None
    priority_class_names: NameAllowlist | None
    service_account_names: NameAllowlist | None
    scheduler_names: NameAllowlist | None
    runtime_class_names: NameAllowlist | None
    verify_locked_fields: bool
    source: Source
    # spec.schedulingGates names a pod may be created with: while gated, its nodeSelector and
    # affinity may still be changed, so a gate is a door to placement after admission.
    scheduling_gates: NameAllowlist | None = None
    secrets: SecretRules | None = None
    volumes: VolumeRules | None = None
    labels: LabelRules | None = None
    affinity: AffinityRules | None = None
    limits: LimitRules | None = None


@dataclass(frozen=True)
class ValidationPolicy:
    name: str
    match: Match
    mode: str
    pod_security_level: str | None
    pod_security_version: str
    rules: Mapping[str, Mapping[str, Any]]
    source: Source


@dataclass(frozen=True)
class Exemption:
    name: str
    match: Match
    rules: tuple[str, ...]
    reason: str
    expires: date | None
    source: Source

    def active(self, today: date) -> bool:
        return self.expires is None or today <= self.expires


@dataclass(frozen=True)
class TrustedCreators:
    namespaces: tuple[str, ...]
    usernames: tuple[str, ...]
    # Which Airflow pods these users create: the scheduler makes executor pods, workers and
    # triggerers make KPO pods (and every task can use its worker's token).
    pod_types: frozenset[PodType] = AIRFLOW_POD_TYPES


@dataclass(frozen=True)
class Limits:
    """Caps on what one review may carry (Settings `limits`), checked before any merging or
    judging: the work and memory of a review grow with these, never with what a caller sends.
    The defaults lie far above any real Airflow pod (a few containers, tens of env vars and
    volumes, a handful of tolerations) and far below what makes a review slow."""

    containers: int = 64  # each of containers, initContainers, ephemeralContainers
    env: int = 1000  # per container
    env_from: int = 100  # per container
    volume_mounts: int = 500  # per container
    ports: int = 200  # per container
    volumes: int = 500
    tolerations: int = 500
    labels: int = 500
    annotations_bytes: int = 256 * 1024  # keys and values, as kube-apiserver counts them
    list_items: int = 1000  # any other list or map in the pod
    values: int = 100_000  # every JSON value in the pod, nested ones included
    # Characters of every key and string in the pod: one stored by etcd (1.5 MiB a request
    # by default) holds well under this; a 2.9 MiB pod of long args would pass every other
    # cap, then be refused by storage after both reviews (unheld, so cheap to repeat).
    text: int = 1024 * 1024
    violations: int = 100  # reported in a decision; past this they are counted


# Settings `limits` key -> Limits field, in the order the schema and messages list them.
LIMIT_KEYS: dict[str, str] = {
    "containers": "containers", "env": "env", "envFrom": "env_from",
    "volumeMounts": "volume_mounts", "ports": "ports", "volumes": "volumes",
    "tolerations": "tolerations", "labels": "labels", "annotationsBytes": "annotations_bytes",
    "listItems": "list_items", "values": "values", "text": "text", "violations": "violations",
}


@dataclass(frozen=True)
class Settings:
    annotation_prefix: str = DEFAULT_ANNOTATION_PREFIX
    node_pool_label: str = "node-pool"
    trusted_creators: tuple[TrustedCreators, ...] = ()
    untrusted: str = "warn"
    # identity.airflowAccounts: every other account that can run task code or write pods for
    # Airflow (dag-processor, api-server, ...). With the trustedCreators' usernames they are
    # Airflow's identities: every pod they write is judged, whatever its labels.
    airflow_accounts: tuple[str, ...] = ()

    @property
    def airflow_usernames(self) -> tuple[str, ...]:
        """Every username (or glob) that is Airflow's, in the order the Settings name them."""
        return tuple(dict.fromkeys(
            (*(u for r in self.trusted_creators for u in r.usernames), *self.airflow_accounts)))

    @cached_property
    def _airflow_matcher(self) -> Any:
        return username_matcher(self.airflow_usernames)

    def is_airflow_identity(self, username: str | None) -> bool:
        """Whether `username` is one of Airflow's accounts (the hooks' username condition)."""
        return bool(self._airflow_matcher(username))

    limits: Limits = field(default_factory=Limits)

    def creator_trusted(self, namespace: str, username: str,
                        pod_type: PodType | None = None) -> bool | None:
        """True/False when some rule names trusted creators for this namespace, else None.
        With `pod_type`, only rules for that type of pod can trust the creator."""
        rules = [r for r in self.trusted_creators
                 if not r.namespaces or any(fnmatchcase(namespace, p) for p in r.namespaces)]
        if not rules:
            return None
        return any(fnmatchcase(username, u) for r in rules for u in r.usernames
                   if pod_type is None or pod_type in r.pod_types)


def _freeze(mapping: dict) -> Mapping:
    return MappingProxyType(mapping)


@dataclass(frozen=True)
class PolicySet:
    """Everything loaded from one policy folder, compiled and indexed once."""

    revision: str
    settings: Settings = field(default_factory=Settings)
    templates: tuple[PodTemplate, ...] = ()
    profiles: Mapping[str, Profile] = field(default_factory=lambda: _freeze({}))
    task_policies_exact: Mapping[str, tuple[TaskPolicy, ...]] = field(
        default_factory=lambda: _freeze({}))
    task_policies_glob: tuple[TaskPolicy, ...] = ()
    override_policies: tuple[OverridePolicy, ...] = ()
    validation_policies: tuple[ValidationPolicy, ...] = ()
    envelopes: tuple[Envelope, ...] = ()
    exemptions: tuple[Exemption, ...] = ()
    document_count: int = 0

    def templates_for(self, task: AirflowTask) -> list[PodTemplate]:
        return [t for t in self.templates if t.match.matches(task)]

    def task_policies_for(self, task: AirflowTask) -> list[TaskPolicy]:
        """Per-DAG policies by index lookup, then the few glob ones; in name order."""
        found: dict[str, TaskPolicy] = {}
        if task.dag_id is not None:
            for policy in self.task_policies_exact.get(task.dag_id, ()):
                found[policy.name] = policy
        for policy in self.task_policies_glob:
            found[policy.name] = policy
        return [p for _, p in sorted(found.items()) if p.match.grants(task)]

    def override_policy_for(self, task: AirflowTask) -> OverridePolicy | None:
        return next((p for p in self.override_policies if p.match.grants(task)), None)

    def validation_policies_for(self, task: AirflowTask) -> list[ValidationPolicy]:
        return [p for p in self.validation_policies if p.match.matches(task)]

    def envelopes_for(self, task: AirflowTask) -> list[Envelope]:
        return [e for e in self.envelopes if e.match.matches(task)]

    def exemptions_for(self, task: AirflowTask, today: date) -> list[Exemption]:
        return [e for e in self.exemptions if e.active(today) and e.match.grants(task)]

    def covers(self, task: AirflowTask) -> bool:
        """Whether any policy applies to this pod at all (foreign pods are never touched)."""
        if task.pod_type is not PodType.OTHER:
            return True
        groups: tuple[Any, ...] = (self.templates, tuple(self.profiles.values()),
                                   self.task_policies_glob, self.override_policies,
                                   self.validation_policies, self.envelopes)
        return any(p.match.matches(task) for group in groups for p in group) or any(
            p.match.matches(task) for ps in self.task_policies_exact.values() for p in ps)
