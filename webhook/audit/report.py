"""What an audit found, in the three output shapes: table, JSON and PolicyReport. Pure.

`Summary` is fed one PodAudit at a time, so a report over a whole cluster holds counts, not
pods. Only the PolicyReport format keeps per-pod results (one small entry per rule) until its
namespace is complete.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.audit.judge import ALLOW, DENY, SKIP, PodAudit

SOURCE = "airflow-pod-webhook"
REPORT_API_VERSION = "wgpolicyk8s.io/v1alpha2"
REPORT_NAME = "airflow-pod-webhook-audit"
NO_DAG = "<none>"
WOULD_DENY = "would deny"  # what a pod gets if every policy enforced


@dataclass
class Summary:
    pods: int = 0
    decisions: Counter = field(default_factory=Counter)
    would_deny: int = 0  # pods denied if every policy enforced
    changed: int = 0  # pods the mutation would change
    by_rule: dict[str, Counter] = field(default_factory=dict)
    by_dag: dict[str, Counter] = field(default_factory=dict)

    def add(self, audit: PodAudit) -> None:
        self.pods += 1
        self.decisions[audit.decision] += 1
        self.would_deny += audit.would_deny
        if audit.decision == SKIP:
            return
        self.changed += bool(audit.changes)
        # Pods per rule and mode: a rule broken at three paths of one pod counts once.
        seen = {(f.rule, f.mode) for f in audit.violations}
        seen |= {(r["rule"], "refused") for r in audit.refusals}
        seen |= {(w.rule, "exempted") for w in audit.exempted}
        for rule, mode in seen:
            self.by_rule.setdefault(rule, Counter())[mode] += 1
        dag = self.by_dag.setdefault(audit.dag_id or NO_DAG, Counter())
        dag["pods"] += 1
        dag[audit.decision] += 1
        dag["would_deny"] += audit.would_deny
        dag["changed"] += bool(audit.changes)

    @property
    def denied(self) -> bool:
        """Some pod would be denied if every policy enforced: what the audit exists to find."""
        return self.would_deny > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pods": self.pods,
            "allow": self.decisions[ALLOW],
            "deny": self.decisions[DENY],
            "skip": self.decisions[SKIP],
            "would_deny": self.would_deny,
            "changed": self.changed,
            "by_rule": {rule: dict(sorted(counts.items()))
                        for rule, counts in sorted(self.by_rule.items())},
            "by_dag": {dag: {k: counts[k]
                             for k in ("pods", ALLOW, DENY, "would_deny", "changed")}
                       for dag, counts in sorted(self.by_dag.items())},
        }


# ---------------------------------------------------------------------------------------------
# JSON


def pod_json(audit: PodAudit) -> dict[str, Any]:
    return {
        "namespace": audit.namespace,
        "name": audit.name,
        "pod_type": audit.pod_type,
        "dag_id": audit.dag_id,
        "task_id": audit.task_id,
        "decision": audit.decision,
        "would_deny": audit.would_deny,
        "violations": [{"rule": v.rule, "path": v.path, "message": v.message, "mode": v.mode}
                       for v in audit.violations],
        "changes": [dict(c) for c in audit.changes],
        "refusals": [dict(r) for r in audit.refusals],
        "exempted": [{"rule": w.rule, "path": w.path, "exemption": w.exemption}
                     for w in audit.exempted],
    }


# ---------------------------------------------------------------------------------------------
# Table

# DECISION is what the hooks answer now; IF ENFORCED what they would answer if every policy
# enforced; RULES name each violated rule with the mode its policy has now.
COLUMNS = (("NAMESPACE", 16), ("POD", 36), ("DAG_ID", 20), ("TASK_ID", 16), ("DECISION", 8),
           ("IF ENFORCED", 11), ("CHANGES", 7), ("RULES", 0))


def table_header() -> str:
    return _row([name for name, _ in COLUMNS])


def table_row(audit: PodAudit) -> str:
    enforced = "-" if audit.decision == SKIP else WOULD_DENY if audit.would_deny else ALLOW
    return _row([audit.namespace, audit.name, audit.dag_id or "-", audit.task_id or "-",
                 audit.decision, enforced, str(len(audit.changes)),
                 ",".join(rule_modes(audit)) or "-"])


def rule_modes(audit: PodAudit) -> list[str]:
    """Each rule once, with the mode it is reported in now (`refused` for an override)."""
    modes: dict[str, str] = {r["rule"]: "refused" for r in audit.refusals}
    for finding in audit.violations:
        modes.setdefault(finding.rule, finding.mode)  # violations come strongest mode first
    return [f"{rule} ({mode})" for rule, mode in sorted(modes.items())]


def _row(cells: list[str]) -> str:
    # Fixed widths: rows are printed as pods are judged, before the longest one is known.
    return "  ".join(cell.ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)
                     ).rstrip()


def table_summary(summary: Summary) -> str:
    data = summary.as_dict()
    lines = ["", f"{data['pods']} pods: {data['allow']} allow, {data['deny']} deny, "
                 f"{data['skip']} skip (not Airflow's, no policy selects them); "
                 f"{data['changed']} would be changed; {data['would_deny']} would be denied "
                 "if every policy enforced"]
    if data["by_rule"]:
        lines += ["", "BY RULE" + " " * 41 + "ENFORCE  WARN  AUDIT  REFUSED  EXEMPTED"]
        for rule, counts in data["by_rule"].items():
            lines.append(f"{rule:<48}" + "".join(
                f"{counts.get(k, 0):>{w}}" for k, w in (("enforce", 7), ("warn", 6),
                                                        ("audit", 7), ("refused", 9),
                                                        ("exempted", 10))))
    if data["by_dag"]:
        lines += ["", f"{'BY DAG':<40}{'PODS':>6}{'ALLOW':>7}{'DENY':>6}{'WOULD DENY':>12}"
                      f"{'CHANGED':>9}"]
        for dag, counts in data["by_dag"].items():
            lines.append(f"{dag:<40}{counts['pods']:>6}{counts[ALLOW]:>7}{counts[DENY]:>6}"
                         f"{counts['would_deny']:>12}{counts['changed']:>9}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# PolicyReport (wgpolicyk8s.io/v1alpha2, the schema Kyverno and Policy Reporter read)


def timestamp(seconds: float) -> dict[str, int]:
    whole = int(seconds)
    return {"seconds": whole, "nanos": round((seconds - whole) * 1e9) % 1_000_000_000}


def report_results(audit: PodAudit, now: float) -> list[dict[str, Any]]:
    """One result per rule for one judged pod (none for skipped pods)."""
    if audit.decision == SKIP:
        return []
    resource = {"apiVersion": "v1", "kind": "Pod", "name": audit.name}
    if audit.namespace:
        resource["namespace"] = audit.namespace
    if audit.uid:
        resource["uid"] = audit.uid
    props = {"pod_type": audit.pod_type, "decision": audit.decision,
             "ifEnforced": DENY if audit.would_deny else ALLOW,
             "changes": str(len(audit.changes))}
    for key in ("dag_id", "task_id"):
        if getattr(audit, key) is not None:
            props[key] = getattr(audit, key)
    stamp = timestamp(now)

    def result(policy: str, rule: str, outcome: str, message: str, scored: bool,
               **extra: str) -> dict[str, Any]:
        return {"policy": policy, "rule": rule, "result": outcome, "message": message,
                "scored": scored, "source": SOURCE, "timestamp": dict(stamp),
                "resources": [dict(resource)], "properties": {**props, **extra}}

    out = []
    # One result per pod and rule: the paths of one rule are joined into one message. Every
    # unwaived violation fails, as it would if its policy enforced; `mode` says what its policy
    # does with it now (enforce denies; warn and audit let the pod start).
    for (policy, rule, mode), found in _grouped(audit.violations, lambda v: (v.policy, v.rule,
                                                                             v.mode)):
        out.append(result(policy, rule, "fail", "; ".join(v.message for v in found),
                          True, mode=mode, path=", ".join(v.path for v in found)))
    for (rule,), found in _grouped(audit.refusals, lambda r: (r["rule"],)):
        out.append(result("overrides", rule, "fail", "; ".join(r["message"] for r in found),
                          True, annotation=", ".join(sorted({r["annotation"] for r in found}))))
    for (policy, rule, exemption), found in _grouped(audit.exempted,
                                                     lambda w: (w.policy, w.rule, w.exemption)):
        out.append(result(policy, rule, "skip", f"exempted by {exemption}: "
                          + "; ".join(w.message for w in found), False, exemption=exemption,
                          path=", ".join(w.path for w in found)))
    out += [result(policy, "*", "pass", "no rule of this policy is violated", True)
            for policy in audit.passed]
    return out


def _grouped(items: Any, key: Any) -> list[tuple[tuple, list]]:
    groups: dict[tuple, list] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return sorted(groups.items())


def policy_report(namespace: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(r["result"] for r in results)
    metadata: dict[str, Any] = {"name": REPORT_NAME, "namespace": namespace,
                                "labels": {"app.kubernetes.io/managed-by": SOURCE}}
    if not namespace:  # pods from files that name no namespace: kubectl's current one
        del metadata["namespace"]
    return {
        "apiVersion": REPORT_API_VERSION,
        "kind": "PolicyReport",
        "metadata": metadata,
        "results": results,
        "summary": {k: counts[k] for k in ("pass", "fail", "warn", "error", "skip")},
    }


# etcd refuses objects over 1.5 MiB (its default --max-request-bytes): a report stays well
# under it, keeping the results that matter most.
REPORT_BUDGET = 1_000_000
PRIORITY = ("fail", "warn", "skip", "pass")


class NamespaceResults:
    """The results of one namespace's report, within REPORT_BUDGET bytes of JSON: failures
    first, then warnings, exemptions, passes. What does not fit is counted, and the report
    says so in one `error` result instead of failing to be written."""

    def __init__(self, namespace: str, budget: int = REPORT_BUDGET) -> None:
        self.namespace, self.budget = namespace, budget
        self.kept: dict[str, list[tuple[int, dict[str, Any]]]] = {k: [] for k in PRIORITY}
        self.sizes: Counter = Counter()
        self.left_out: Counter = Counter()
        self.added = 0

    def add(self, results: list[dict[str, Any]]) -> None:
        for result in results:
            kind = result["result"]
            size = len(orjson.dumps(result))
            if self.sizes[kind] + size > self.budget:
                self.left_out[kind] += 1  # cannot fit even alone: memory stays bounded
                continue
            self.kept[kind].append((self.added, result))
            self.sizes[kind] += size
            self.added += 1

    def report(self, now: float) -> dict[str, Any]:
        chosen: list[tuple[int, dict[str, Any]]] = []
        used = 0
        left_out = Counter(self.left_out)
        for kind in PRIORITY:
            for seq, result in self.kept[kind]:
                size = len(orjson.dumps(result))
                if used + size > self.budget:
                    left_out[kind] += 1
                    continue
                chosen.append((seq, result))
                used += size
        chosen.sort(key=lambda pair: pair[0])  # back in the order the pods were judged
        results = [result for _, result in chosen]
        if left_out:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(left_out.items()))
            where = f"-n {self.namespace}" if self.namespace else "FILE"
            results.append({
                "policy": SOURCE, "rule": "report-size", "result": "error", "scored": False,
                "source": SOURCE, "timestamp": timestamp(now),
                "message": f"{sum(left_out.values())} results left out ({counts}): the report "
                           f"would pass the size limit of a Kubernetes object; run "
                           f"`airflow-pod-webhook audit {where}` for all of them"})
        return policy_report(self.namespace, results)
