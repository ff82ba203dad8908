"""One pod, judged as if it were being created now by the decision core (webhook.decide): the
mutation, then the validation of the pod the mutation leaves, exactly as the hooks answer;
beside it, what the pod would get if every policy enforced. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from webhook.airflow_pods import PodType
from webhook.audit.strip import submitted_pod
from webhook.caps import CAP_RULE
from webhook.decide import ALLOW, DENY, SKIP, PodRequest, decide
from webhook.mutation.overrides import APPLIED
from webhook.pod.field_paths import Item, Segment, leaf_paths
from webhook.pod.lists import MERGE_KEYS
from webhook.policy.model import PolicySet
from webhook.rules import known
from webhook.validation.validate import MODES

__all__ = ["ALLOW", "DENY", "SKIP", "PodAudit", "audit_pod", "is_airflow"]
POD_VALIDITY = known("webhook: pod validity")  # changes made to keep the pod valid (pod_invariants)


@dataclass(frozen=True)
class Finding:
    """One violated rule on one pod, in the mode it is reported in."""

    rule: str
    path: str
    message: str
    mode: str  # enforce | warn | audit
    policy: str  # the ValidationPolicy that reports it in that mode


@dataclass(frozen=True)
class Waiver:
    rule: str
    path: str
    message: str
    exemption: str
    policy: str


@dataclass(frozen=True)
class PodAudit:
    namespace: str
    name: str
    pod_type: str
    dag_id: str | None
    task_id: str | None
    decision: str  # allow | deny | skip
    violations: tuple[Finding, ...] = ()
    changes: tuple[dict, ...] = ()  # {"op", "path", "policies"}
    refusals: tuple[dict, ...] = ()  # {"annotation", "field", "rule", "message"}
    exempted: tuple[Waiver, ...] = ()
    passed: tuple[str, ...] = ()  # ValidationPolicies that found nothing on this pod
    uid: str = ""
    warnings: tuple[str, ...] = field(default=())
    # What the pod would get if every policy enforced: the adoption path's `mode: audit` and
    # `mode: warn` steps still show what enforcing would deny.
    would_deny: bool = False

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(sorted({v.rule for v in self.violations}
                            | {r["rule"] for r in self.refusals}))


def audit_pod(pod: dict, policies: PolicySet, today: date | None = None,
              username: str | None = None) -> PodAudit:
    """Judge one pod as returned by the API server (or as written in a file): the decision
    core's answer, kept per policy so a report says which policy found what; `username`:
    who wrote it, when known (the hooks judge every pod Airflow's accounts write)."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    explain = policies.settings.annotation_prefix + APPLIED
    pod = submitted_pod(pod, explain)
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    name = meta.get("name") or meta.get("generateName") or ""
    base: dict[str, Any] = dict(namespace=namespace, name=name if isinstance(name, str) else "",
                                uid=meta.get("uid") if isinstance(meta.get("uid"), str) else "")
    # Who created the pod is not recorded on it: identity checks run only when told.
    decision = decide(PodRequest(pod, namespace, username, today=today), policies)
    mutation = decision.mutation  # None only for a pod past a cap, refused before any work
    task = mutation.task if mutation else decision.task
    assert task is not None
    base.update(pod_type=task.pod_type.value, dag_id=task.dag_id, task_id=task.task_id)
    if decision.verdict == SKIP:
        return PodAudit(**base, decision=SKIP)
    refusals = tuple({"annotation": r.annotation, "field": r.field, "rule": r.rule,
                      "message": r.message} for r in decision.refusals)
    if decision.caps:
        refusals += ({"annotation": "", "field": decision.caps[0].path, "rule": CAP_RULE,
                      "message": decision.message},)
    found: list[Finding] = []
    waived: list[Waiver] = []
    passed: tuple[str, ...] = ()
    checked = decision.validation
    if checked is not None:
        found = [Finding(v.rule, v.path, v.message, mode, checked.sources.get(v, ""))
                 for v, mode in sorted((v, m) for m in MODES for v in checked.violations[m])]
        waived = [Waiver(v.rule, v.path, v.message, exemption, checked.sources.get(v, ""))
                  for v, exemption in checked.waived]
        passed = checked.silent
    changes = tuple(_changes(pod, decision.pod, decision.patch, mutation.applied, policies,
                             explain)) if mutation else ()
    return PodAudit(**base, decision=decision.verdict, violations=tuple(found),
                    changes=changes, refusals=refusals, exempted=tuple(waived),
                    passed=passed, warnings=decision.warnings,
                    would_deny=decision.would_deny)


# ---------------------------------------------------------------------------------------------
# Which policy made which change


def _changes(before: dict, after: dict, patch: list[dict], applied: tuple[str, ...],
             policies: PolicySet, explain: str) -> list[dict]:
    explain_pointer = "/metadata/annotations/" + explain.replace("~", "~0").replace("/", "~1")
    sources = _policy_paths(applied, policies)
    annotations = next((a for a in applied if a.startswith("annotations:")), None)
    out = []
    for op in patch:
        if op["path"] == explain_pointer or (op["path"] == "/metadata/annotations"
                                             and set(op.get("value", {})) == {explain}):
            continue  # the webhook's own explain annotation is bookkeeping, not a change
        path = _texts(_field_path(op["path"], after if op["op"] != "remove" else before))
        names = [name for name, paths in sources if any(_overlap(p, path) for p in paths)]
        if not names:
            names = [annotations] if annotations else [POD_VALIDITY]
        out.append({"op": op["op"], "path": op["path"], "policies": names})
    return out


_paths_cache: dict[str, Any] = {"set": None, "paths": {}}


def _policy_paths(applied: tuple[str, ...], policies: PolicySet
                  ) -> list[tuple[str, list[tuple[str, ...]]]]:
    """The field paths each applied policy sets, computed once per policy set."""
    if _paths_cache["set"] is not policies:
        _paths_cache.update(set=policies, paths={})
    cache = _paths_cache["paths"]
    missing = tuple(name for name in applied if name not in cache)
    if missing:
        cache.update((name, [_texts(p) for p in paths])
                     for name, paths in _policy_leaf_paths(missing, policies))
    return [(name, cache[name]) for name in applied if name in cache]


def _texts(path: tuple[Segment, ...]) -> tuple[str, ...]:
    return tuple(s.key if isinstance(s, Item) else s for s in path)


def _policy_leaf_paths(applied: tuple[str, ...], policies: PolicySet
                       ) -> list[tuple[str, list[tuple[Segment, ...]]]]:
    templates = {f"PodTemplate/{t.name}": t for t in policies.templates}
    out = []
    for name in applied:
        kind, _, short = name.partition("/")
        if kind == "PodTemplate" and name in templates:
            template = templates[name]
            out.append((name, [p for p, _ in leaf_paths(dict(template.template))]
                        + list(template.locked)))
        elif kind == "Profile" and short in policies.profiles:
            out.append((name, [p for p, _ in leaf_paths(dict(policies.profiles[short].template))]))
        elif kind == "TaskPolicy":
            found = [t for ps in policies.task_policies_exact.values() for t in ps
                     if t.name == short] + [t for t in policies.task_policies_glob
                                            if t.name == short]
            if found:
                out.append((name, [p for p, _ in leaf_paths(dict(found[0].template))]))
    return out


def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """One path lies under the other; `[*]` on either side matches any item."""
    return all(x == y or x == "*" or y == "*" for x, y in zip(a, b, strict=False))


def _field_path(pointer: str, doc: Any) -> tuple[Segment, ...]:
    """A JSON pointer as a field path: list indexes become the item's merge key value, the way
    policies name them; a list without merge keys ends the path (it is set as a whole)."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    out: list[Segment] = []
    node, field_name = doc, None
    for token in tokens:
        if isinstance(node, list):
            keys = MERGE_KEYS.get(field_name or "")
            index = int(token) if token.isdigit() else -1
            item = node[index] if keys and 0 <= index < len(node) else None
            if not isinstance(item, dict) or item.get(keys[0]) is None:
                break
            out.append(Item(",".join(str(item[k]) for k in keys if item.get(k) is not None)))
            node, field_name = item, None
            continue
        out.append(Item(token) if ("." in token or "/" in token) else token)
        node = node.get(token) if isinstance(node, dict) else None
        field_name = token
    return tuple(out)


def is_airflow(audit: PodAudit) -> bool:
    return audit.pod_type != PodType.OTHER.value
