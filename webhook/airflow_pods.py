"""Which pods are Airflow's, and which task they run (see shared research, airflow.md §1).

Executor pods carry exact ids in annotations; KubernetesPodOperator pods only carry labels,
sanitised by Airflow's `make_safe_label_value`, so matching falls back to those.

Classification is fail-safe: every pod with an Airflow marker the hooks select on is judged.
- `kubernetes_pod_operator=True` makes a KPO pod, whatever else it carries; executor markers
  on it are an identity problem (the validating hook denies it, rule `airflow: podIdentity`).
- Both executor markers (`kubernetes_executor=True` and `airflow-worker`) make an executor pod.
- One executor marker alone is not a pod Airflow builds: it is judged as a KPO pod (the type
  whose identity is trusted least) and denied for its identity.
Only an executor pod's ids can select DAG- or task-scoped grants (`ids_trusted`): a KPO pod's
labels are written by its author, and its creator's token is in every task's hands.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any


class PodType(str, Enum):
    EXECUTOR = "executor"
    KPO = "kpo"
    OTHER = "other"


KPO_MARKER = "kubernetes_pod_operator"
EXECUTOR_MARKERS = ("kubernetes_executor", "airflow-worker")
# Airflow's markers as labels, (key, the value it must hold or None when the key alone
# marks): the one definition of "carries an Airflow marker", read by `identify` and rendered
# into the hooks' selection (webhook.hook_selection, cluster/configurations.py).
MARKER_LABELS: tuple[tuple[str, str | None], ...] = (
    ("kubernetes_executor", "True"),
    ("airflow-worker", None),
    (KPO_MARKER, "True"),
)
MARKER_VALUES: dict[str, str | None] = dict(MARKER_LABELS)
POD_IDENTITY_RULE = "airflow: podIdentity"
# Airflow writes these as a label (sanitised) and an annotation (exact) from the same value.
_PAIRED_IDS = ("dag_id", "task_id", "run_id", "try_number", "map_index")

# Labels and annotations Airflow owns: it selects and adopts pods by them (airflow.md §1.4).
AIRFLOW_LABELS = frozenset({
    "dag_id", "task_id", "run_id", "try_number", "map_index", "kubernetes_executor",
    "airflow_version", "airflow-worker", "execution_date", "logical_date",
    "airflow_executor_done", "airflow_pod_revoked", "kubernetes_pod_operator",
    "airflow_kpo_in_cluster", "parent_dag_id", "already_checked",
})
AIRFLOW_ANNOTATIONS = frozenset({
    "dag_id", "task_id", "run_id", "try_number", "map_index", "execution_date",
    "logical_date", "callback_id", "task_instance_id",
})

_UNSAFE = re.compile(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$")


def make_safe_label_value(value: str) -> str:
    """Airflow's pod_generator.make_safe_label_value, byte for byte."""
    safe = _UNSAFE.sub("", value)
    if len(safe) > 63 or value != safe:
        digest = hashlib.md5(value.encode()).hexdigest()[:9]
        safe = safe[: 63 - 9 - 1] + "-" + digest
    return safe


@dataclass(frozen=True)
class AirflowTask:
    """What the webhook knows about the task a pod runs."""

    pod_type: PodType
    namespace: str
    dag_id: str | None
    task_id: str | None
    exact_ids: bool  # False when ids come from sanitised labels (KPO pods)
    run_id: str | None = None
    try_number: str | None = None
    map_index: str | None = None
    labels: dict[str, str] | None = None
    # Where this pod's Airflow markers or ids contradict each other, as (field path,
    # requirement, value found); non-empty: the validating hook denies it (POD_IDENTITY_RULE).
    identity_problems: tuple[tuple[str, str, str], ...] = ()
    # A pod with none of Airflow's markers that one of Airflow's accounts wrote (Settings
    # identity): judged as a KPO pod (templates, locks, envelope, Pod Security) with no grants.
    unmarked: bool = False

    @property
    def ids_trusted(self) -> bool:
        """Whether dag_id/task_id may select DAG- or task-scoped grants (Exemptions,
        TaskPolicies, OverridePolicies): only for a consistent executor pod, whose ids the
        scheduler writes. A KPO pod's labels are its author's choice."""
        return self.pod_type is PodType.EXECUTOR and not self.identity_problems

    def matches_dag(self, pattern: str) -> bool:
        return _matches(pattern, self.dag_id, self.exact_ids)

    def matches_task(self, pattern: str) -> bool:
        return _matches(pattern, self.task_id, self.exact_ids)


def _matches(pattern: str, value: str | None, exact: bool) -> bool:
    from fnmatch import fnmatchcase

    if value is None:
        return pattern == "*"
    if fnmatchcase(value, pattern):
        return True
    # A label holds the sanitised id: compare it with the sanitised exact pattern.
    return not exact and not is_glob(pattern) and make_safe_label_value(pattern) == value


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def has_label(labels: Any, key: str, value: str | None) -> bool:
    """Whether `labels` hold `key` (with `value`, unless it is None): one marker's test."""
    return isinstance(labels, dict) and key in labels and (value is None
                                                           or labels[key] == value)


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def identify(pod: dict, namespace: str = "", *, airflow_writer: bool = False) -> AirflowTask:
    """Classify a pod; never raises on malformed metadata. `airflow_writer`: one of Airflow's
    accounts wrote it, so a pod without markers is the least trusted Airflow pod, not foreign."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    labels = _str_map(meta.get("labels"))
    annotations = _str_map(meta.get("annotations"))
    ns = namespace or (meta.get("namespace") if isinstance(meta.get("namespace"), str) else "")
    executor_markers = [k for k in EXECUTOR_MARKERS if has_label(labels, k, MARKER_VALUES[k])]
    if has_label(labels, KPO_MARKER, MARKER_VALUES[KPO_MARKER]) or (
            executor_markers and len(executor_markers) < 2):
        return AirflowTask(
            pod_type=PodType.KPO,
            namespace=ns,
            dag_id=labels.get("dag_id"),
            task_id=labels.get("task_id"),
            exact_ids=False,
            run_id=labels.get("run_id"),
            try_number=labels.get("try_number"),
            map_index=labels.get("map_index"),
            labels=labels,
            identity_problems=_marker_problems(labels, executor_markers),
        )
    if executor_markers:
        return AirflowTask(
            pod_type=PodType.EXECUTOR,
            namespace=ns,
            dag_id=annotations.get("dag_id", labels.get("dag_id")),
            task_id=annotations.get("task_id", labels.get("task_id")),
            exact_ids="dag_id" in annotations,
            run_id=annotations.get("run_id", labels.get("run_id")),
            try_number=annotations.get("try_number", labels.get("try_number")),
            map_index=annotations.get("map_index", labels.get("map_index")),
            labels=labels,
            identity_problems=_id_problems(labels, annotations),
        )
    if airflow_writer:
        return AirflowTask(pod_type=PodType.KPO, namespace=ns, dag_id=None, task_id=None,
                           exact_ids=False, labels=labels, unmarked=True)
    return AirflowTask(
        pod_type=PodType.OTHER, namespace=ns, dag_id=labels.get("dag_id"),
        task_id=labels.get("task_id"), exact_ids=False, labels=labels,
    )


def _marker_problems(labels: dict[str, str], executor_markers: list[str]
                     ) -> tuple[tuple[str, str, str], ...]:
    if labels.get(KPO_MARKER) == "True":
        if not executor_markers:
            return ()
        return (("metadata.labels", f"must not hold the executor's label(s) "
                 f"{' and '.join(executor_markers)} on a KubernetesPodOperator pod "
                 f"({KPO_MARKER}=True); remove them from the operator's labels= (the executor "
                 "would adopt or watch this pod as its own)", ", ".join(executor_markers)),)
    present = executor_markers[0]
    missing = "kubernetes_executor=True" if present == "airflow-worker" else "airflow-worker"
    return ((f"metadata.labels.{present}", f"must come with {missing}, as on every "
             f"KubernetesExecutor pod; remove {present} from the pod's labels",
             labels.get(present, "")),)


def _id_problems(labels: dict[str, str], annotations: dict[str, str]
                 ) -> tuple[tuple[str, str, str], ...]:
    """Airflow writes each id as an exact annotation and its sanitised label: a pair that
    disagrees was rewritten by someone, so neither can say which task this is."""
    return tuple(
        (f"metadata.labels.{key}", f"must be the annotation {key}={annotations[key]!r} as "
         "Airflow sanitises it; do not set either in pod_override", labels[key])
        for key in _PAIRED_IDS
        if key in labels and key in annotations
        and make_safe_label_value(annotations[key]) != labels[key])
