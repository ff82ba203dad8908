"""Turn parsed policy documents into one immutable PolicySet, or precise errors.

Pure: documents in, (PolicySet | None, errors) out. Reading files is webhook.policy.load's job.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from webhook.airflow_pods import (
    AIRFLOW_ANNOTATIONS,
    AIRFLOW_LABELS,
    PodType,
    is_glob,
    make_safe_label_value,
)
from webhook.field_paths import Item, format_path, get_values, parse_path
from webhook.pod_fields import fragment_errors
from webhook.policy.model import (
    AIRFLOW_POD_TYPES,
    RESOURCE_FIELDS,
    Bound,
    Envelope,
    Exemption,
    LabelSelector,
    Match,
    NameAllowlist,
    OverridePolicy,
    Placement,
    PodTemplate,
    PolicySet,
    Profile,
    ResourceBounds,
    Settings,
    Source,
    TaskPolicy,
    TolerationRule,
    TrustedCreators,
    ValidationPolicy,
)
from webhook.policy.schema import DOCUMENT_SCHEMA, SPEC_SCHEMAS
from webhook.quantity import parse_quantity


@dataclass(frozen=True)
class PolicyDocument:
    """One YAML document and where it was read from."""

    file: str
    index: int
    body: Any


@dataclass(frozen=True, order=True)
class PolicyError:
    file: str
    index: int
    path: str
    reason: str

    def __str__(self) -> str:
        # Documents are counted from 1, as people do; -1 marks an error of the whole folder.
        where = self.file if self.index < 0 else f"{self.file} (document {self.index + 1})"
        return f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"


_DOC_VALIDATOR = Draft202012Validator(DOCUMENT_SCHEMA, format_checker=FormatChecker())
_SPEC_VALIDATORS = {
    kind: Draft202012Validator(schema, format_checker=FormatChecker())
    for kind, schema in SPEC_SCHEMAS.items()
}
# Fields a policy may never set: Airflow and kube-apiserver own them.
_OWNED_METADATA = ("name", "generateName", "namespace", "uid", "ownerReferences")
_DROPS_IDENTITY = ("may not be null: it would remove Airflow's labels and annotations, which "
                   "select the pod for the validating webhook; remove single keys instead")


def schema_errors(validator: Draft202012Validator, body: Any, prefix: str) -> list[tuple[str, str]]:
    out = []
    for err in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        path = prefix
        for part in err.absolute_path:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        out.append((path or "<document>", err.message))
    return out


def revision_of(files: Iterable[tuple[str, bytes]]) -> str:
    """A content hash of the folder: the same files give the same revision on every replica."""
    digest = hashlib.sha256()
    for name, data in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:12]


def compile_policies(
    documents: list[PolicyDocument], revision: str
) -> tuple[PolicySet | None, list[PolicyError]]:
    """Check every document and build the set; any error means no set (keep the last good)."""
    errors: list[PolicyError] = []
    parsed: dict[str, list[tuple[PolicyDocument, str, dict]]] = defaultdict(list)
    seen: dict[tuple[str, str], PolicyDocument] = {}
    for doc in documents:
        found = _check_document(doc)
        if found:
            errors.extend(PolicyError(doc.file, doc.index, p, r) for p, r in found)
            continue
        kind, name = doc.body["kind"], doc.body["metadata"]["name"]
        if (kind, name) in seen:
            first = seen[(kind, name)]
            errors.append(PolicyError(doc.file, doc.index, "metadata.name",
                                      f"duplicate {kind} {name!r}, first defined in "
                                      f"{first.file} (document {first.index + 1})"))
            continue
        seen[(kind, name)] = doc
        parsed[kind].append((doc, name, doc.body["spec"]))
    if len(parsed["Settings"]) > 1:
        for doc, _, _ in parsed["Settings"][1:]:
            errors.append(PolicyError(doc.file, doc.index, "kind",
                                      "only one Settings document is allowed"))
    builder = _Builder(errors)
    policy_set = builder.build(parsed, revision, len(documents))
    errors.sort()
    return (None if errors else policy_set), errors


def _check_document(doc: PolicyDocument) -> list[tuple[str, str]]:
    if not isinstance(doc.body, dict):
        return [("<document>", "must be a mapping with apiVersion, kind, metadata and spec")]
    found = schema_errors(_DOC_VALIDATOR, doc.body, "")
    if found:
        return found
    kind = doc.body["kind"]
    return schema_errors(_SPEC_VALIDATORS[kind], doc.body["spec"], "spec")


class _Builder:
    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = errors

    def error(self, doc: PolicyDocument, path: str, reason: str) -> None:
        self.errors.append(PolicyError(doc.file, doc.index, path, reason))

    def build(self, parsed: dict, revision: str, count: int) -> PolicySet:
        settings = Settings()
        for _doc, _, spec in parsed["Settings"][:1]:
            settings = self.settings(spec)
        templates = sorted(
            (self.template(d, n, s) for d, n, s in parsed["PodTemplate"]),
            key=lambda t: (t.priority, t.name),
        )
        profiles = {n: Profile(n, s.get("description", ""), self.match(d, s.get("match")),
                               self.fragment(d, s["template"]), Source(d.file, d.index))
                    for d, n, s in parsed["Profile"]}
        exact: dict[str, list[TaskPolicy]] = defaultdict(list)
        globbed: list[TaskPolicy] = []
        for d, n, s in sorted(parsed["TaskPolicy"], key=lambda x: x[1]):
            policy = TaskPolicy(n, self.grant_match(d, s["match"]),
                                self.fragment(d, s["template"]), Source(d.file, d.index))
            dag_ids = s["match"]["dagIds"]
            if any(is_glob(p) for p in dag_ids):
                globbed.append(policy)
                continue
            # KPO pods only carry the sanitised dag_id label: index under both spellings.
            for dag_id in {k for p in dag_ids for k in (p, make_safe_label_value(p))}:
                exact[dag_id].append(policy)
        overrides = [self.override(d, n, s, profiles) for d, n, s in
                     sorted(parsed["OverridePolicy"], key=lambda x: x[1])]
        validations = [self.validation(d, n, s) for d, n, s in
                       sorted(parsed["ValidationPolicy"], key=lambda x: x[1])]
        envelopes = [self.envelope(d, n, s) for d, n, s in
                     sorted(parsed["Envelope"], key=lambda x: x[1])]
        exemptions = [Exemption(n, self.grant_match(d, s["match"]), tuple(s.get("rules", ["*"])),
                                s["reason"], _date(s.get("expires")), Source(d.file, d.index))
                      for d, n, s in sorted(parsed["Exemption"], key=lambda x: x[1])]
        return PolicySet(
            revision=revision,
            settings=settings,
            templates=tuple(templates),
            profiles=MappingProxyType(profiles),
            task_policies_exact=MappingProxyType({k: tuple(v) for k, v in exact.items()}),
            task_policies_glob=tuple(globbed),
            override_policies=tuple(overrides),
            validation_policies=tuple(validations),
            envelopes=tuple(envelopes),
            exemptions=tuple(exemptions),
            document_count=count,
        )

    def match(self, doc: PolicyDocument, spec: dict | None) -> Match:
        spec = spec or {}
        selector = None
        if "labelSelector" in spec:
            sel = spec["labelSelector"]
            selector = LabelSelector(
                tuple(sorted(sel.get("matchLabels", {}).items())),
                tuple((e["key"], e["operator"], tuple(e.get("values", ())))
                      for e in sel.get("matchExpressions", ())),
            )
        types = frozenset(PodType(t) for t in spec.get("podTypes", ())) or AIRFLOW_POD_TYPES
        if PodType.OTHER in types and selector is None:
            self.error(doc, "spec.match.labelSelector",
                       "podTypes 'other' needs a labelSelector: foreign pods are never matched "
                       "by namespace alone")
        return Match(types, tuple(spec.get("namespaces", ())), tuple(spec.get("dagIds", ())),
                     tuple(spec.get("taskIds", ())), selector)

    def grant_match(self, doc: PolicyDocument, spec: dict | None) -> Match:
        """match() for a policy that gives something: a scope that could only be met by what
        the DAG author writes would silently never apply (Match.grants), so it is an error."""
        match = self.match(doc, spec)
        airflow_types = match.pod_types & AIRFLOW_POD_TYPES
        if match.selector is not None and airflow_types:
            self.error(doc, "spec.match.labelSelector",
                       "cannot scope this on executor or KPO pods: their labels are written by "
                       "the DAG author, so it would never apply; use namespaces, podTypes and "
                       "dagIds (docs/threat-model.md)")
        scoped = any(p != "*" for p in (*match.dag_ids, *match.task_ids))
        if scoped and airflow_types == {PodType.KPO}:
            self.error(doc, "spec.match.dagIds",
                       "a KPO pod's DAG and task ids are its author's choice and never select "
                       "this, so it would never apply; scope it by namespaces with dagIds "
                       "['*'] (docs/threat-model.md)")
        return match

    def fragment(self, doc: PolicyDocument, template: dict, path: str = "spec.template") -> dict:
        for field, reason in fragment_errors(template):
            self.error(doc, f"{path}.{field}", reason)
        if "metadata" in template and template["metadata"] is None:
            self.error(doc, f"{path}.metadata", _DROPS_IDENTITY)
        meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
        for field in ("labels", "annotations"):
            if field in meta and meta[field] is None:
                self.error(doc, f"{path}.metadata.{field}", _DROPS_IDENTITY)
        for key in _OWNED_METADATA:
            if key in meta:
                self.error(doc, f"{path}.metadata.{key}",
                           "is set by Airflow and kube-apiserver; a policy may not change it")
        for field, owned in (("labels", AIRFLOW_LABELS), ("annotations", AIRFLOW_ANNOTATIONS)):
            values = meta.get(field) if isinstance(meta.get(field), dict) else {}
            for key in sorted(owned & set(values)):
                self.error(doc, f"{path}.metadata.{field}.{key}",
                           "Airflow owns this key (it selects and adopts pods by it)")
        return without_type_meta(template)

    def template(self, doc: PolicyDocument, name: str, spec: dict) -> PodTemplate:
        fragment = self.fragment(doc, spec["template"])
        locked = []
        for i, text in enumerate(spec.get("lockedFields", ())):
            try:
                segments = parse_path(text)
            except ValueError as exc:
                self.error(doc, f"spec.lockedFields[{i}]", str(exc))
                continue
            if segments[0] == "metadata":
                self.error(doc, f"spec.lockedFields[{i}]",
                           "only spec fields can be locked; Airflow owns the metadata")
                continue
            for pos, seg in enumerate(segments):
                if isinstance(seg, Item) and seg.key != "*" and not get_values(
                        fragment, segments[: pos + 1]):
                    self.error(doc, f"spec.lockedFields[{i}]",
                               f"the template has no {format_path(segments[: pos + 1])} to lock")
                    break
            locked.append(segments)
        return PodTemplate(name, self.match(doc, spec.get("match")), spec.get("priority", 0),
                           fragment, tuple(locked), Source(doc.file, doc.index))

    def override(self, doc: PolicyDocument, name: str, spec: dict, profiles: dict
                 ) -> OverridePolicy:
        allowed = []
        for i, text in enumerate(spec.get("allowedFields", ())):
            try:
                allowed.append(parse_path(text))
            except ValueError as exc:
                self.error(doc, f"spec.allowedFields[{i}]", str(exc))
        for i, profile in enumerate(spec.get("allowedProfiles", ())):
            if profile != "*" and profile not in profiles:
                self.error(doc, f"spec.allowedProfiles[{i}]", f"no Profile named {profile!r}")
        return OverridePolicy(
            name=name,
            match=self.grant_match(doc, spec.get("match")),
            allowed_fields=tuple(allowed),
            allowed_profiles=tuple(spec.get("allowedProfiles", ("*",))),
            source=Source(doc.file, doc.index),
        )

    def envelope(self, doc: PolicyDocument, name: str, spec: dict) -> Envelope:
        """The one place an Envelope's YAML becomes frozen objects (quantities parsed once)."""
        resources = None
        if "resources" in spec:
            section = spec["resources"]
            resources = ResourceBounds(
                per_container=self.bounds(doc, "spec.resources.perContainer",
                                          section.get("perContainer", {})),
                per_pod=self.bounds(doc, "spec.resources.perPod", section.get("perPod", {})))
        placement = None
        if "placement" in spec:
            section = spec["placement"]
            pools = section.get("nodePools")
            if section.get("requireNodePool") and not pools:
                self.error(doc, "spec.placement.nodePools",
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
            name=name,
            match=self.match(doc, spec.get("match")),
            mode=spec.get("mode", "enforce"),
            resources=resources,
            placement=placement,
            priority_class_names=names("priorityClassNames"),
            service_account_names=names("serviceAccountNames"),
            scheduler_names=names("schedulerNames"),
            runtime_class_names=names("runtimeClassNames"),
            verify_locked_fields=spec.get("verifyLockedFields", True),
            source=Source(doc.file, doc.index),
        )

    def bounds(self, doc: PolicyDocument, path: str, section: dict
               ) -> MappingProxyType:
        out = {}
        for field_name in RESOURCE_FIELDS:
            maxima = {}
            for resource, value in section.get(field_name, {}).items():
                where = f"{path}.{field_name}[{resource}]"
                quantity = self.quantity(doc, where, value)
                if quantity is not None and not (quantity.is_finite() and quantity >= 0):
                    self.error(doc, where, f"is not a finite, non-negative quantity: {value!r}")
                elif quantity is not None:
                    maxima[resource] = Bound(quantity, str(value))
            out[field_name] = MappingProxyType(maxima)
        return MappingProxyType(out)

    def validation(self, doc: PolicyDocument, name: str, spec: dict) -> ValidationPolicy:
        rules = spec.get("rules", {})
        for rule in ("resources",):
            for bound in ("maxRequests", "maxLimits"):
                for resource, value in rules.get(rule, {}).get(bound, {}).items():
                    self.quantity(doc, f"spec.rules.{rule}.{bound}.{resource}", value)
        security = spec.get("podSecurity") or {}
        return ValidationPolicy(
            name=name,
            match=self.match(doc, spec.get("match")),
            mode=spec.get("mode", "enforce"),
            pod_security_level=security.get("level"),
            pod_security_version=security.get("version", "latest"),
            rules=MappingProxyType({k: MappingProxyType(v) for k, v in rules.items()}),
            source=Source(doc.file, doc.index),
        )

    def settings(self, spec: dict) -> Settings:
        identity = spec.get("identity", {})
        return Settings(
            annotation_prefix=spec.get("annotationPrefix", Settings.annotation_prefix),
            node_pool_label=spec.get("nodePoolLabel", Settings.node_pool_label),
            trusted_creators=tuple(TrustedCreators(
                tuple(t.get("namespaces", ())), tuple(t["usernames"]),
                frozenset(PodType(x) for x in t.get("podTypes", ())) or AIRFLOW_POD_TYPES)
                for t in identity.get("trustedCreators", ())),
            untrusted=identity.get("untrusted", "warn"),
        )

    def quantity(self, doc: PolicyDocument, path: str, value: Any) -> Decimal | None:
        try:
            return parse_quantity(value)
        except (ValueError, TypeError, ArithmeticError):
            self.error(doc, path, f"is not a Kubernetes quantity: {value!r}")
            return None


def without_type_meta(template: dict) -> dict:
    """An admin may paste a whole pod_template_file: its apiVersion and kind are not fields."""
    return {k: v for k, v in template.items() if k not in ("apiVersion", "kind")}


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
