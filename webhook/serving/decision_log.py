"""One structured JSON line per admission, for a log pipeline to index.

Only identifiers and outcomes: never the pod's args or env values (Airflow 3 puts the task's
API token in the worker's args). Identifiers come from the pod, so each is capped in length:
a hostile annotation must not turn one log line into a megabyte.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import orjson

from webhook.review import Decision

log = logging.getLogger("airflow_pod_webhook.decisions")
auth_log = logging.getLogger("airflow_pod_webhook.auth")
MAX_FIELD_CHARS = 256  # above any Kubernetes name (253) and Airflow dag_id (250)


def decision_record(decision: Decision, duration_s: float, now: datetime | None = None
                    ) -> dict:
    task = decision.task
    record = {
        "time": timestamp(now),
        "uid": _capped(decision.uid),
        "username": _capped(decision.username),
        "operation": _capped(decision.operation),
        "dry_run": decision.dry_run,
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


def timestamp(now: datetime | None = None) -> str:
    """RFC 3339 in UTC with milliseconds, as kube-apiserver's audit events write time."""
    moment = now if now is not None else datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _capped(value: Any, limit: int = MAX_FIELD_CHARS) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"...({len(value)} chars)"
    return value


def log_decision(decision: Decision, duration_s: float) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(orjson.dumps(decision_record(decision, duration_s)).decode())


def unauthenticated_record(hook: str, peer: str, now: datetime | None = None) -> dict:
    return {"time": timestamp(now), "event": "unauthenticated", "hook": hook,
            "peer": _capped(peer),
            "reason": "no verified client certificate: not reviewed, not a decision"}


def log_unauthenticated(hook: str, peer: str) -> None:
    """A review call refused for want of a client certificate: on its own logger, so a
    pipeline that counts decisions never counts it."""
    auth_log.warning(orjson.dumps(unauthenticated_record(hook, peer)).decode())
