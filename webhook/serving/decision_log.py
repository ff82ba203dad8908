"""One structured JSON line per admission, for a log pipeline to index.

Only identifiers and outcomes: never the pod's args or env values (Airflow 3 puts the task's
API token in the worker's args). Identifiers come from the pod, so each is capped in length:
a hostile annotation must not turn one log line into a megabyte.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from webhook.review import Decision

log = logging.getLogger("airflow_pod_webhook.decisions")
MAX_FIELD_CHARS = 256  # above any Kubernetes name (253) and Airflow dag_id (250)


def decision_record(decision: Decision, duration_s: float) -> dict:
    task = decision.task
    record = {
        "hook": decision.hook,
        "decision": decision.decision,
        "namespace": _capped(decision.namespace),
        "pod": _capped(decision.pod),
        "dag_id": _capped(task.dag_id) if task else None,
        "task_id": _capped(task.task_id) if task else None,
        "run_id": _capped(task.run_id) if task else None,
        "try_number": _capped(task.try_number) if task else None,
        "pod_type": task.pod_type.value if task else None,
        "rules": list(decision.rules),
        "policies": list(decision.policies),
        "revision": decision.revision,
        "patch_ops": decision.patch_ops,
        "warnings": decision.warnings,
        "duration_ms": round(duration_s * 1000, 3),
    }
    if decision.reason:
        record["reason"] = _capped(decision.reason, 2 * MAX_FIELD_CHARS)
    record.update(decision.extra)
    return record


def _capped(value: Any, limit: int = MAX_FIELD_CHARS) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"...({len(value)} chars)"
    return value


def log_decision(decision: Decision, duration_s: float) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(orjson.dumps(decision_record(decision, duration_s)).decode())
