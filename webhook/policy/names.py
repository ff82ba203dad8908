"""Every name a policy writes, checked against what it names.

A typo in a policy never fails loudly on its own: a locked field that does not exist locks
nothing, an exemption for a rule that does not exist waives nothing, a bound on `memroy`
bounds nothing. So each kind of name has one checker here, and `NAME_FIELDS` says which
policy fields hold which kind of name:

- field paths (`spec.containers[*].resources`) against the generated Pod model;
- resource names against Kubernetes' rules (standard names, `hugepages-<size>`, or a
  domain-qualified extended resource such as `nvidia.com/gpu`);
- rule names (`baseline: hostPathVolumes`) against every registered rule family;
- label keys and values, namespaces, absolute paths.

A checker returns None or a `NameProblem` (reason and the closest valid names). A new policy
field gets its checks by adding a row to `NAME_FIELDS`; a new rule or rule family by a row
in webhook/rules.py.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from webhook.airflow_pods import is_glob
from webhook.kube.pod_fields import (
    DNS_SUBDOMAIN,
    QUALIFIED_NAME,
    pod_model,
    quantity_map_path,
    resource_name_error,
)
from webhook.pod.field_paths import Item, format_path, parse_path
from webhook.rules import FAMILIES, RULES, Family, checks_of

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class NameProblem:
    reason: str
    suggestions: tuple[str, ...] = ()


NameCheck = Callable[[Any], "NameProblem | None"]


def closest(word: str, choices: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """The valid names a typo most likely meant (difflib's ratio, as `git` suggests)."""
    return tuple(difflib.get_close_matches(word, sorted(set(choices)), n=n, cutoff=0.6))


# ---------------------------------------------------------------------------------------------
# Field paths


def check_field_path(text: Any) -> NameProblem | None:
    """A path as allowlists and locks write it, walked through the Pod model field by field:
    `[name]` and `[*]` select list items or map keys, a map's keys are free (labels), and keys
    of resource maps must be resource names."""
    if not isinstance(text, str):
        return NameProblem("must be a field path string")
    try:
        segments = parse_path(text)
    except ValueError as exc:
        return NameProblem(str(exc))
    model = pod_model()
    ref: Any = model["root"]
    for pos, seg in enumerate(segments):
        walked = segments[:pos]
        where = format_path(walked) if walked else "a Pod"
        if isinstance(seg, Item):
            if isinstance(ref, dict) and ("list" in ref or "map" in ref):
                if "map" in ref and quantity_map_path(format_path(walked)) and seg.key != "*":
                    problem = check_resource_name(seg.key)
                    if problem:
                        return NameProblem(problem.reason, tuple(
                            format_path((*walked, Item(s))) for s in problem.suggestions))
                ref = ref.get("list", ref.get("map"))
                continue
            return NameProblem(f"{where} is not a list or a map: [{seg.key}] selects nothing")
        if isinstance(ref, dict) and "map" in ref:
            if quantity_map_path(format_path(walked)):
                problem = check_resource_name(seg)
                if problem:
                    return NameProblem(problem.reason, tuple(
                        format_path((*walked, s)) for s in problem.suggestions))
            ref = ref["map"]
            continue
        if isinstance(ref, dict) and "list" in ref:
            return NameProblem(f"{where} is a list: select its items with [name] or [*]",
                               (format_path((*walked, Item("*"), *segments[pos:])),))
        fields = model["types"].get(ref) if isinstance(ref, str) else None
        if fields is None:
            shown = {"str": "string", "int": "integer", "bool": "boolean", "float": "number",
                     "datetime": "timestamp", "object": "quantity or int-or-string"}.get(ref, ref)
            return NameProblem(f"{where} is a {shown}: it has no field {seg!r}")
        if seg not in fields:
            kind = ref.removeprefix("V1").removeprefix("CoreV1")
            return NameProblem(
                f"{where} ({kind}) has no field {seg!r}" if walked else
                f"a Pod has no field {seg!r}",
                tuple(format_path((*walked, s, *segments[pos + 1:]))
                      for s in closest(seg, fields)))
        ref = fields[seg]
    return None


def check_spec_field_path(text: Any) -> NameProblem | None:
    """A locked field: Airflow owns the pod's metadata, so only spec fields can be locked."""
    problem = check_field_path(text)
    if problem is None and isinstance(text, str) and not text.startswith("spec"):
        return NameProblem("only spec fields can be locked; Airflow owns the metadata")
    return problem


def check_resource_name(name: Any) -> NameProblem | None:
    """A container resource name, as Kubernetes validates it (pod_fields.resource_name_error)."""
    found = resource_name_error(name)
    return None if found is None else NameProblem(*found)


# ---------------------------------------------------------------------------------------------
# Rule names: every family whose checks report violations as `<family>: <check>`


def policy_families() -> dict[str, Family]:
    """The families policies name, read from the one rule table (webhook/rules.py)."""
    return {name: family for name, family in FAMILIES.items() if family.in_policies}


def family_checks(family: Family) -> list[str]:
    """What an Exemption may name of a family: a waivable family's waivable checks (the rest
    are never waived, see `check_rule_name`), every check of a family that is never waived."""
    return checks_of(family.name, waivable_only=family.waivable)


def rule_names() -> list[str]:
    """Every `<family>: <check>` a violation can report."""
    return [f"{name}: {check}" for name, family in policy_families().items()
            for check in family_checks(family)]


def normalise_rule(text: str) -> str:
    """`baseline:hostPorts` and `baseline : hostPorts` are `baseline: hostPorts`."""
    return re.sub(r"\s*:\s*", ": ", text.strip())


def check_rule_name(entry: Any) -> NameProblem | None:
    """An Exemption's rule entry: `*`, a family (`airflow`), or `family: check` (globs work)."""
    if not isinstance(entry, str) or not entry.strip():
        return NameProblem("must name a rule, e.g. 'baseline: hostPathVolumes'")
    entry = normalise_rule(entry)
    if entry == "*":
        return None
    families = policy_families()
    waivable = {s: f for s, f in families.items() if f.waivable}
    source, colon, check = entry.partition(": ")
    if source in families and not families[source].waivable:
        return NameProblem(f"{families[source].title} is never waived by an Exemption")
    if entry in RULES and not RULES[entry].waivable:
        return NameProblem(f"is never waived by an Exemption: "
                           f"{RULES[entry].never_waived_because}")
    if not colon:
        if source in waivable:
            return None
        return NameProblem(f"no rule family {source!r} (families: {', '.join(waivable)})",
                           closest(source, waivable))
    family = waivable.get(source)
    if family is None:
        everything = [n for n in rule_names() if n.split(": ", 1)[0] in waivable]
        return NameProblem(f"no rule family {source!r} (families: {', '.join(waivable)})",
                           closest(entry, everything) or closest(source, waivable))
    checks = family_checks(family)
    if is_glob(check):
        if any(fnmatchcase(c, check) for c in checks):
            return None
        return NameProblem(f"matches no {family.title} check ({', '.join(checks)})")
    if check in checks:
        return None
    elsewhere = [f"{s}: {check}" for s, f in waivable.items() if check in family_checks(f)]
    if elsewhere:
        return NameProblem(f"{check} is not a {family.title} check", tuple(elsewhere))
    return NameProblem(f"no {family.title} check {check!r}",
                       tuple(f"{source}: {c}" for c in closest(check, checks)))


# ---------------------------------------------------------------------------------------------
# Labels, namespaces, paths


_LABEL_RULE = ("at most 63 characters, alphanumeric, '-', '_' or '.', starting and ending "
               "alphanumeric")


def check_label_key(key: Any) -> NameProblem | None:
    """A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63."""
    if not isinstance(key, str) or not key:
        return NameProblem("a label key must be a non-empty string")
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        return NameProblem("a label key's prefix must be a DNS subdomain (example.com/name)")
    if len(name) > 63 or not QUALIFIED_NAME.match(name):
        return NameProblem(f"is not a valid label key: {_LABEL_RULE}")
    return None


def check_label_value(value: Any) -> NameProblem | None:
    if not isinstance(value, str):
        return NameProblem("a label value must be a string")
    if value and (len(value) > 63 or not QUALIFIED_NAME.match(value)):
        return NameProblem(f"is not a valid label value: {_LABEL_RULE}")
    return None


def check_namespace(name: Any) -> NameProblem | None:
    if isinstance(name, str) and len(name) <= 63 and _DNS_LABEL.match(name):
        return None
    return NameProblem("is not a namespace name (a DNS label: lowercase alphanumeric and '-', "
                       "at most 63)")


def check_object_name(name: Any) -> NameProblem | None:
    """The name of a Kubernetes object (PriorityClass, RuntimeClass): a DNS subdomain."""
    if isinstance(name, str) and len(name) <= 253 and DNS_SUBDOMAIN.match(name):
        return None
    return NameProblem("is not a Kubernetes object name (lowercase alphanumeric, '-' and '.')")


def check_service_account(name: Any) -> NameProblem | None:
    if check_object_name(name) is None:
        return None
    return NameProblem("is not a service account name (lowercase alphanumeric, '-' and '.')")


def check_account_username(name: Any) -> NameProblem | None:
    """A username the hooks' CEL can name: `*` and `?` are globs, `[` is not (kube-apiserver
    renders the name into a regex where the Python trust check would read a class)."""
    if isinstance(name, str) and name and not any(c in name for c in "[]") \
            and name == name.strip() and not any(c.isspace() or ord(c) < 32 for c in name):
        return None
    return NameProblem("is not a username the hooks can select on (no brackets, spaces or "
                       "control characters; globs are * and ?)")


def or_glob(check: NameCheck) -> NameCheck:
    """The same check for a field that also takes globs (`team-*`): a glob is not checked."""
    def checked(value: Any) -> NameProblem | None:
        return None if isinstance(value, str) and is_glob(value) else check(value)
    return checked


def check_absolute_path(path: Any) -> NameProblem | None:
    if isinstance(path, str) and path.startswith("/"):
        return None
    return NameProblem("must be an absolute path (it would never match a hostPath)",
                       (f"/{path}",) if isinstance(path, str) and path else ())


# ---------------------------------------------------------------------------------------------
# Which policy fields hold which names
#
# A selector is a dotted path into a document's body: `[*]` is every item of a list, `*` every
# value of a map, `<key>` every key of a map (the key itself is the name checked).

_MATCH = "spec.match"
_COMMON: list[tuple[str, NameCheck]] = [
    (f"{_MATCH}.namespaces[*]", or_glob(check_namespace)),
    (f"{_MATCH}.labelSelector.matchLabels.<key>", check_label_key),
    (f"{_MATCH}.labelSelector.matchLabels.*", check_label_value),
    (f"{_MATCH}.labelSelector.matchExpressions[*].key", check_label_key),
    (f"{_MATCH}.labelSelector.matchExpressions[*].values[*]", check_label_value),
]
NAME_FIELDS: dict[str, list[tuple[str, NameCheck]]] = {
    "PodTemplate": [("spec.lockedFields[*]", check_spec_field_path)],
    "OverridePolicy": [
        ("spec.allowedFields[*]", check_field_path),
        ("spec.maxResources.<key>", check_resource_name),
        ("spec.nodeSelector.<key>", check_label_key),
        ("spec.nodeSelector.*[*]", or_glob(check_label_value)),
        ("spec.tolerations[*].key", check_label_key),
    ],
    "Envelope": [
        *((f"spec.resources.{scope}.{field}.<key>", check_resource_name)
          for scope in ("perContainer", "perPod") for field in ("requests", "limits")),
        ("spec.resources.claimTemplates[*]", or_glob(check_object_name)),
        ("spec.placement.nodePools[*]", or_glob(check_label_value)),
        ("spec.placement.otherNodeLabels[*]", or_glob(check_label_key)),
        ("spec.placement.tolerations[*].key", check_label_key),
        ("spec.priorityClassNames.allowed[*]", or_glob(check_object_name)),
        ("spec.serviceAccountNames.allowed[*]", or_glob(check_service_account)),
        ("spec.serviceAccountNames.forbidden[*]", or_glob(check_service_account)),
        ("spec.runtimeClassNames.allowed[*]", or_glob(check_object_name)),
        ("spec.schedulingGates.allowed[*]", or_glob(check_label_key)),
        ("spec.secrets.allowed[*]", or_glob(check_object_name)),
        ("spec.secrets.forbidden[*]", or_glob(check_object_name)),
        ("spec.secrets.templateUses[*].secret", or_glob(check_object_name)),
        ("spec.volumes.persistentVolumeClaims[*].claimName", or_glob(check_object_name)),
        ("spec.volumes.ephemeral.storageClasses[*]", or_glob(check_object_name)),
        ("spec.labels.forbidden[*].key", or_glob(check_label_key)),
        ("spec.labels.forbidden[*].values[*]", or_glob(check_label_value)),
        ("spec.labels.templateLabels[*].labels.<key>", check_label_key),
        ("spec.labels.templateLabels[*].labels.*", check_label_value),
        ("spec.affinity.topologyKeys[*]", or_glob(check_label_key)),
        ("spec.limits.required[*]", check_resource_name),
    ],
    "ValidationPolicy": [
        ("spec.rules.resources.requireRequests[*]", check_resource_name),
        ("spec.rules.resources.requireLimits[*]", check_resource_name),
        ("spec.rules.resources.maxRequests.<key>", check_resource_name),
        ("spec.rules.resources.maxLimits.<key>", check_resource_name),
        ("spec.rules.nodeSelectors.allowed.<key>", check_label_key),
        ("spec.rules.nodeSelectors.allowed.*[*]", or_glob(check_label_value)),
        ("spec.rules.tolerations.allowedKeys[*]", or_glob(check_label_key)),
        ("spec.rules.serviceAccounts.allowed[*]", or_glob(check_service_account)),
        ("spec.rules.hostPaths.allowedPrefixes[*]", check_absolute_path),
    ],
    "Exemption": [("spec.rules[*]", check_rule_name)],
    "Settings": [
        ("spec.nodePoolLabel", check_label_key),
        ("spec.identity.trustedCreators[*].namespaces[*]", or_glob(check_namespace)),
        ("spec.identity.airflowReleases[*].namespace", check_namespace),
        ("spec.identity.airflowReleases[*].taskNamespaces[*]", or_glob(check_namespace)),
        ("spec.identity.trustedCreators[*].usernames[*]", check_account_username),
        ("spec.identity.airflowAccounts[*]", check_account_username),
    ],
}


@dataclass(frozen=True)
class BadName:
    path: str
    value: Any
    problem: NameProblem


def name_errors(kind: str, body: Mapping) -> list[BadName]:
    """Every bad name in one schema-valid document of `kind`."""
    rows = [*_COMMON, *NAME_FIELDS.get(kind, ())]
    out = []
    for selector, check in rows:
        for path, value in select(body, selector):
            problem = check(value)
            if problem is not None:
                out.append(BadName(path, value, problem))
    return out


def select(body: Any, selector: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of everything a selector names in a document body."""
    yield from _select(body, _split(selector), "")


def _split(selector: str) -> list[str]:
    return [p for p in re.split(r"\.|(?=\[\*\])", selector) if p]


def _select(node: Any, parts: list[str], path: str) -> Iterator[tuple[str, Any]]:
    if not parts:
        yield path, node
        return
    head, rest = parts[0], parts[1:]
    if head == "[*]":
        if isinstance(node, list):
            for i, item in enumerate(node):
                yield from _select(item, rest, f"{path}[{i}]")
    elif head == "<key>":
        if isinstance(node, dict):
            for key in node:
                yield f"{path}.{key}", key
    elif head == "*":
        if isinstance(node, dict):
            for key, value in node.items():
                yield from _select(value, rest, f"{path}.{key}")
    elif isinstance(node, dict) and head in node:
        yield from _select(node[head], rest, f"{path}.{head}" if path else head)

