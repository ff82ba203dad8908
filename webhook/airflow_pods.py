"""Which pods are Airflow's, and which task they run (see shared research, airflow.md §1).

Executor pods carry exact ids in annotations; KubernetesPodOperator pods only carry labels,
sanitised by Airflow's `make_safe_label_value`, so matching falls back to those.
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


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def identify(pod: dict, namespace: str = "") -> AirflowTask:
    """Classify a pod; never raises on malformed metadata."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    labels = _str_map(meta.get("labels"))
    annotations = _str_map(meta.get("annotations"))
    ns = namespace or (meta.get("namespace") if isinstance(meta.get("namespace"), str) else "")
    if labels.get("kubernetes_executor") == "True" and "airflow-worker" in labels:
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
        )
    if labels.get("kubernetes_pod_operator") == "True" and "airflow-worker" not in labels:
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
        )
    return AirflowTask(
        pod_type=PodType.OTHER, namespace=ns, dag_id=labels.get("dag_id"),
        task_id=labels.get("task_id"), exact_ids=False, labels=labels,
    )
