"""One structured JSON line per admission, for a log pipeline to index.

Only identifiers and outcomes: never the pod's args or env values (Airflow 3 puts the task's
API token in the worker's args).
"""

from __future__ import annotations

import json
import logging

from webhook.review import Decision

log = logging.getLogger("airflow_pod_webhook.decisions")


def decision_record(decision: Decision, duration_s: float) -> dict:
    task = decision.task
    record = {
        "hook": decision.hook,
        "decision": decision.decision,
        "namespace": decision.namespace,
        "pod": decision.pod,
        "dag_id": task.dag_id if task else None,
        "task_id": task.task_id if task else None,
        "run_id": task.run_id if task else None,
        "try_number": task.try_number if task else None,
        "pod_type": task.pod_type.value if task else None,
        "rules": list(decision.rules),
        "policies": list(decision.policies),
        "revision": decision.revision,
        "patch_ops": decision.patch_ops,
        "warnings": decision.warnings,
        "duration_ms": round(duration_s * 1000, 3),
    }
    if decision.reason:
        record["reason"] = decision.reason
    record.update(decision.extra)
    return record


def log_decision(decision: Decision, duration_s: float) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(json.dumps(decision_record(decision, duration_s), separators=(",", ":")))
