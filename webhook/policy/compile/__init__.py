"""Turn parsed policy documents into one immutable PolicySet, or precise errors.

Pure: documents in, (PolicySet | None, errors) out. Reading files is webhook.policy.load's job.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from dataclasses import field as dataclass_field
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
from webhook.kube.pod_fields import did_you_mean, fragment_problems
from webhook.kube.quantity import parse_quantity
from webhook.pod.field_paths import Item, format_path, get_values, parse_path
from webhook.policy.locate import locate, scalar_text
from webhook.policy.model import (
    AIRFLOW_POD_TYPES,
    LIMIT_KEYS,
    RESOURCE_FIELDS,
    AffinityRules,
    Bound,
    ClaimRule,
    Envelope,
    Exemption,
    LabelRule,
    LabelRules,
    LabelSelector,
    LimitRules,
    Limits,
    Match,
    NameAllowlist,
    OverridePolicy,
    Placement,
    PodTemplate,
    PolicySet,
    Profile,
    ResourceBounds,
    SecretRules,
    SecretUse,
    Settings,
    Source,
    TaskPolicy,
    TemplateLabels,
    TolerationRule,
    TrustedCreators,
    ValidationPolicy,
    VolumeRules,
)
from webhook.policy.names import closest, name_errors
from webhook.policy.schema import DOCUMENT_SCHEMA, SPEC_SCHEMAS


@dataclass(frozen=True)
class PolicyDocument:
    """One YAML document and where it was read from; `node` is its YAML node tree (with line
    and column marks) when it was read from a file."""

    file: str
    index: int
    body: Any
    node: Any = dataclass_field(default=None, compare=False, repr=False)
    # (path, key node) of keys written twice in one map, found before construction
    duplicates: tuple[tuple[str, Any], ...] = dataclass_field(default=(), compare=False,
                                                              repr=False)


@dataclass(frozen=True)
class Problem:
    """What is wrong at one path of a document, before we know where the path is written."""

    path: str
    reason: str
    value: Any = None  # the bad value, when the message should quote it
    suggestions: tuple[str, ...] = ()
    at_key: bool = False  # the map key itself is wrong (`memroy:`), not its value
    mark: tuple[int, int] | None = None  # (line, column) when known without the path
    quote: bool = True  # False: the reason already shows the value


@dataclass(frozen=True, order=True)
class PolicyError:
    """One error in a policy folder, printed as
    `FILE:LINE:COL: document N (Kind/name): field.path: bad value 'x': reason; did you mean 'y'?`
    """

    file: str
    index: int  # the document in its file, from 0; -1 for an error of the whole folder
    path: str
    reason: str
    line: int = 0  # 1-based; 0 when unknown (documents built in code, not read from a file)
    column: int = 0
    document: str = ""  # Kind/name
    value: str = ""  # the bad value, quoted; "" when the message does not quote one
    suggestions: tuple[str, ...] = ()
    # The file could not be read as YAML at all (or not read): bad input, not a lint finding.
    unreadable: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        if self.index < 0 or self.unreadable:
            return f"{where}: {self.reason}"
        parts = [where, f"document {self.index + 1}"
                 + (f" ({self.document})" if self.document else "")]
        if self.path:
            parts.append(self.path)
        message = f"bad value {self.value}: {self.reason}" if self.value else self.reason
        return ": ".join(parts) + ": " + message + did_you_mean(self.suggestions)


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
    """(path, message) of every schema error, for callers that want plain text."""
    return [(p.path, p.reason + did_you_mean(p.suggestions))
            for p in schema_problems(validator, body, prefix)]


def schema_problems(validator: Draft202012Validator, body: Any, prefix: str) -> list[Problem]:
    """Schema errors at the path they concern: an unknown field is reported at its own key,
    with the closest known fields; a value outside an enum with the closest allowed ones."""
    out = []
    for err in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        path = prefix
        for part in err.absolute_path:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = list(err.schema.get("properties", {}))
            for key in sorted(k for k in err.instance if k not in known):
                where = f"{path}.{key}" if path else str(key)
                out.append(Problem(where, f"is not a field here (fields: {', '.join(known)})",
                                   key, closest(str(key), known), at_key=True))
            continue
        if err.validator == "enum" and isinstance(err.instance, str):
            choices = [str(c) for c in err.validator_value]
            out.append(Problem(path or "<document>", f"must be one of {', '.join(choices)}",
                               err.instance, closest(err.instance, choices)))
            continue
        if err.validator == "const" and isinstance(err.instance, str):
            out.append(Problem(path or "<document>", f"must be {err.validator_value}",
                               err.instance))
            continue
        out.append(Problem(path or "<document>", _schema_reason(err)))
    return out


def _schema_reason(err: Any) -> str:
    """jsonschema's message without the value it starts with (the error quotes it)."""
    if err.validator == "pattern":
        return f"must match the pattern {err.validator_value}"
    if err.validator == "format":
        return {"date": "must be a date, YYYY-MM-DD"}.get(err.validator_value,
                                                          f"must be a {err.validator_value}")
    if isinstance(err.instance, (str, int, float)) and not isinstance(err.instance, bool):
        return err.message.removeprefix(f"{err.instance!r} ")
    return err.message


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
        errors.extend(_error(doc, p) for p in (*found, *_name_problems(doc)))
        if found:
            continue
        kind, name = doc.body["kind"], doc.body["metadata"]["name"]
        if (kind, name) in seen:
            first = seen[(kind, name)]
            errors.append(_error(doc, Problem(
                "metadata.name", f"duplicate {kind} name, first defined in {first.file} "
                f"(document {first.index + 1})")))
            continue
        seen[(kind, name)] = doc
        parsed[kind].append((doc, name, doc.body["spec"]))
    if len(parsed["Settings"]) > 1:
        for doc, _, _ in parsed["Settings"][1:]:
            errors.append(_error(doc, Problem("kind", "only one Settings document is allowed")))
    builder = _Builder(errors)
    policy_set = builder.build(parsed, revision, len(documents))
    errors.sort(key=lambda e: (e.file, e.index, e.line, e.column, e.path, e.reason))
    return (None if errors else policy_set), errors


def _check_document(doc: PolicyDocument) -> list[Problem]:
    duplicates = [Problem(path, "is written twice in one map; YAML would silently keep "
                                "only the last", str(node.value), at_key=True,
                          mark=(node.start_mark.line + 1, node.start_mark.column + 1))
                  for path, node in doc.duplicates]
    if duplicates:
        return duplicates
    if not isinstance(doc.body, dict):
        return [Problem("<document>", "must be a mapping with apiVersion, kind, metadata and "
                                      "spec")]
    found = schema_problems(_DOC_VALIDATOR, doc.body, "")
    if found:
        return found
    kind = doc.body["kind"]
    return schema_problems(_SPEC_VALIDATORS[kind], doc.body["spec"], "spec")


def _name_problems(doc: PolicyDocument) -> list[Problem]:
    """Bad names in a document of a known kind, reported beside its schema errors (and when
    it has none, the document still compiles, so its other errors show in the same run)."""
    body = doc.body if isinstance(doc.body, dict) else {}
    if body.get("kind") not in SPEC_SCHEMAS or not isinstance(body.get("spec"), dict):
        return []
    return [Problem(bad.path, bad.problem.reason, bad.value, bad.problem.suggestions,
                    at_key=bad.path.endswith(f".{bad.value}"))
            for bad in name_errors(body["kind"], body)]


def _error(doc: PolicyDocument, problem: Problem) -> PolicyError:
    """The error for one problem, with its line, column and bad value when the document
    was read from a file."""
    body = doc.body if isinstance(doc.body, dict) else {}
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    kind, name = body.get("kind"), meta.get("name")
    label = f"{kind}/{name}" if isinstance(kind, str) and isinstance(name, str) else ""
    value = problem.value
    line = column = 0
    if problem.mark is not None:
        line, column = problem.mark
    elif doc.node is not None:
        found = locate(doc.node, problem.path)
        line, column = found.line, found.column
        if problem.at_key and found.exact and found.key is not None:
            mark = found.key.start_mark
            line, column = mark.line + 1, mark.column + 1
        elif found.exact and value is None and not problem.at_key and problem.quote:
            value = scalar_text(found.node)
    return PolicyError(doc.file, doc.index, problem.path, problem.reason, line, column, label,
                       _quote(value) if value is not None else "", problem.suggestions)


def _quote(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= 120 else text[:119] + "…"


class _Builder:
    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = errors

    def error(self, doc: PolicyDocument, path: str, reason: str, value: Any = None,
              suggestions: tuple[str, ...] = (), at_key: bool = False, quote: bool = True
              ) -> None:
        self.errors.append(_error(doc, Problem(path, reason, value, suggestions, at_key,
                                               quote=quote)))

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
            for i, (_, operator, values) in enumerate(selector.match_expressions):
                # As Kubernetes validates a selector: `In` with no values matches nothing.
                if operator in ("In", "NotIn") and not values:
                    self.error(doc, f"spec.match.labelSelector.matchExpressions[{i}]",
                               f"operator {operator} needs at least one value")
                elif operator in ("Exists", "DoesNotExist") and values:
                    self.error(doc, f"spec.match.labelSelector.matchExpressions[{i}].values",
                               f"must be empty for operator {operator}", quote=False)
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
        for problem in fragment_problems(template):
            self.error(doc, f"{path}.{problem.path}", problem.reason,
                       problem.key if problem.at_key else None, at_key=problem.at_key,
                       quote=False)
        if "metadata" in template and template["metadata"] is None:
            self.error(doc, f"{path}.metadata", _DROPS_IDENTITY)
        meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
        for field in ("labels", "annotations"):
            if field in meta and meta[field] is None:
                self.error(doc, f"{path}.metadata.{field}", _DROPS_IDENTITY)
        for key in _OWNED_METADATA:
            if key in meta:
                self.error(doc, f"{path}.metadata.{key}",
                           "is set by Airflow and kube-apiserver; a policy may not change it",
                           key, at_key=True)
        for field, owned in (("labels", AIRFLOW_LABELS), ("annotations", AIRFLOW_ANNOTATIONS)):
            values = meta.get(field) if isinstance(meta.get(field), dict) else {}
            for key in sorted(owned & set(values)):
                self.error(doc, f"{path}.metadata.{field}.{key}",
                           "Airflow owns this key (it selects and adopts pods by it)",
                           key, at_key=True)
        return without_type_meta(template)

    def template(self, doc: PolicyDocument, name: str, spec: dict) -> PodTemplate:
        fragment = self.fragment(doc, spec["template"])
        locked = []
        for i, text in enumerate(spec.get("lockedFields", ())):
            try:
                segments = parse_path(text)
            except ValueError:
                continue  # reported by the name checks (webhook.policy.names)
            if segments[0] == "metadata":
                continue  # likewise
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
        for text in spec.get("allowedFields", ()):
            # a path that does not parse is reported by the name checks (policy.names)
            with suppress(ValueError):
                allowed.append(parse_path(text))
        for i, profile in enumerate(spec.get("allowedProfiles", ())):
            if profile != "*" and profile not in profiles:
                self.error(doc, f"spec.allowedProfiles[{i}]",
                           f"no Profile named {profile!r} "
                           f"(profiles: {', '.join(sorted(profiles)) or 'none'})",
                           suggestions=closest(profile, profiles))
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
                per_pod=self.bounds(doc, "spec.resources.perPod", section.get("perPod", {})),
                claim_templates=tuple(section.get("claimTemplates", ())))
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
            secrets=self.secret_rules(spec["secrets"]) if "secrets" in spec else None,
            volumes=self.volume_rules(doc, spec["volumes"]) if "volumes" in spec else None,
            labels=self.label_rules(spec["labels"]) if "labels" in spec else None,
            affinity=AffinityRules(tuple(spec["affinity"]["topologyKeys"]),
                                   spec["affinity"].get("allowRequired", True))
            if "affinity" in spec else None,
            limits=LimitRules(tuple(spec["limits"]["required"])) if "limits" in spec else None,
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
            scheduling_gates=names("schedulingGates"),
        )

    def secret_rules(self, section: dict) -> SecretRules:
        return SecretRules(
            names=NameAllowlist(tuple(section.get("allowed", ("*",))),
                                tuple(section.get("forbidden", ()))),
            template_uses=tuple(SecretUse(
                secret=use["secret"], pod_types=frozenset(PodType(t) for t in use["podTypes"]),
                containers=tuple(use.get("containers", ())), env=tuple(use.get("env", ())),
                volumes=tuple(use.get("volumes", ())))
                for use in section.get("templateUses", ())))

    def volume_rules(self, doc: PolicyDocument, section: dict) -> VolumeRules:
        def bound(path: str, value: Any) -> Bound | None:
            if value is None:
                return None
            quantity = self.quantity(doc, path, value)
            if quantity is not None and not (quantity.is_finite() and quantity >= 0):
                self.error(doc, path, f"is not a finite, non-negative quantity: {value!r}")
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

    def label_rules(self, section: dict) -> LabelRules:
        return LabelRules(
            forbidden=tuple(LabelRule(r["key"], tuple(r.get("values", ())))
                            for r in section["forbidden"]),
            template_labels=tuple(TemplateLabels(
                frozenset(PodType(t) for t in t_["podTypes"]), tuple(sorted(t_["labels"].items())))
                for t_ in section.get("templateLabels", ())))

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
            trusted_creators=tuple(
                creator for release in identity.get("airflowReleases", ())
                for creator in airflow_chart_creators(
                    release["release"], release["namespace"],
                    release.get("taskNamespaces") or (release["namespace"],),
                    release.get("fullnameOverride"))
            ) + tuple(TrustedCreators(
                tuple(t.get("namespaces", ())), tuple(t["usernames"]),
                frozenset(PodType(x) for x in t.get("podTypes", ())) or AIRFLOW_POD_TYPES)
                for t in identity.get("trustedCreators", ())),
            untrusted=identity.get("untrusted", "warn"),
            airflow_accounts=tuple(
                account for release in identity.get("airflowReleases", ())
                for account in airflow_chart_accounts(
                    release["release"], release["namespace"], release.get("fullnameOverride"))
            ) + tuple(identity.get("airflowAccounts", ())),
            limits=Limits(**{LIMIT_KEYS[k]: v for k, v in spec.get("limits", {}).items()}),
        )

    def quantity(self, doc: PolicyDocument, path: str, value: Any) -> Decimal | None:
        try:
            return parse_quantity(value)
        except (ValueError, TypeError, ArithmeticError):
            self.error(doc, path, "is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)", value)
            return None


def airflow_chart_fullname(release: str, fullname_override: str | None = None) -> str:
    """The official Airflow Helm chart's `airflow.fullname`: the release name when it contains
    "airflow", else <release>-airflow (chart/templates/_helpers.yaml), unless overridden."""
    if fullname_override:
        return fullname_override[:63].rstrip("-")
    name = release if "airflow" in release else f"{release}-airflow"
    return name[:63].rstrip("-")


def airflow_chart_creators(release: str, namespace: str, task_namespaces: Iterable[str],
                           fullname_override: str | None = None
                           ) -> tuple[TrustedCreators, TrustedCreators]:
    """Who an official-chart release creates Airflow pods as, in the task namespaces: its
    scheduler (executor and KPO pods), its workers and triggerer (KPO pods only: every task
    can use its worker's token, so a worker is never trusted for executor pods)."""
    fullname = airflow_chart_fullname(release, fullname_override)
    prefix = f"system:serviceaccount:{namespace}:{fullname}"
    where = tuple(task_namespaces)
    return (
        TrustedCreators(where, (f"{prefix}-scheduler",), AIRFLOW_POD_TYPES),
        TrustedCreators(where, (f"{prefix}-worker", f"{prefix}-triggerer"),
                        frozenset({PodType.KPO})),
    )


def airflow_chart_accounts(release: str, namespace: str, fullname_override: str | None = None
                           ) -> tuple[str, ...]:
    """The release's other accounts that run DAG code or reach the API (the dag-processor
    parses DAG files; Airflow 3's api-server serves the Execution API): Airflow's identities
    beside the creators, so every pod they write is judged."""
    fullname = airflow_chart_fullname(release, fullname_override)
    prefix = f"system:serviceaccount:{namespace}:{fullname}"
    return (f"{prefix}-dag-processor", f"{prefix}-api-server")


def without_type_meta(template: dict) -> dict:
    """An admin may paste a whole pod_template_file: its apiVersion and kind are not fields."""
    return {k: v for k, v in template.items() if k not in ("apiVersion", "kind")}


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
