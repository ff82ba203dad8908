"""TaskPolicy: a fragment for the pods of some DAGs, indexed by dag_id for the mutating hook."""

from __future__ import annotations

from collections import defaultdict

from webhook.airflow_pods import is_glob, make_safe_label_value
from webhook.policy.compile.context import Context, PolicyDocument
from webhook.policy.compile.fragments import compile_fragment
from webhook.policy.compile.matches import compile_grant_match
from webhook.policy.model import Source, TaskPolicy


def compile_task_policies(ctx: Context, parsed: list[tuple[PolicyDocument, str, dict]]
                          ) -> tuple[dict[str, tuple[TaskPolicy, ...]], tuple[TaskPolicy, ...]]:
    """The policies by exact dag_id (under both spellings), and those with a glob, by name."""
    exact: dict[str, list[TaskPolicy]] = defaultdict(list)
    globbed: list[TaskPolicy] = []
    for d, n, s in sorted(parsed, key=lambda x: x[1]):
        policy = TaskPolicy(n, compile_grant_match(ctx, d, s["match"]),
                            compile_fragment(ctx, d, s["template"]), Source(d.file, d.index))
        dag_ids = s["match"]["dagIds"]
        if any(is_glob(p) for p in dag_ids):
            globbed.append(policy)
            continue
        # KPO pods only carry the sanitised dag_id label: index under both spellings.
        for dag_id in {k for p in dag_ids for k in (p, make_safe_label_value(p))}:
            exact[dag_id].append(policy)
    return {k: tuple(v) for k, v in exact.items()}, tuple(globbed)
