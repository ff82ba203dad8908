"""Which pods the create hooks select, in Python: the identity layer's side of the hooks'
matchConditions, which cluster/configurations.py renders from these same definitions.

A pod is sent to the create hooks when it carries one of Airflow's marker labels
(`airflow_pods.MARKER_LABELS`, or the labels an admin chose instead) or one of Airflow's
accounts writes it, and it is not a kubelet's mirror pod. The mutation reads this so that it
never turns a selected pod into an unselected one, and the offline commands judge what the
hooks would be sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webhook.airflow_accounts import username_matcher
from webhook.airflow_pods import (
    EXECUTOR_MARKERS,
    KPO_MARKER,
    MARKER_LABELS,
    MARKER_VALUES,
    has_label,
)

__all__ = ["DEFAULT_POD_LABELS", "MIRROR_POD_ANNOTATION", "NOT_AIRFLOW", "selected_by_hooks"]

# Which pods are Airflow's: (label key, required value or None for "key exists"); any one suffices.
# KubernetesExecutor workers carry kubernetes_executor=True and airflow-worker=<job id>;
# KubernetesPodOperator pods carry kubernetes_pod_operator=True.
DEFAULT_POD_LABELS: tuple[tuple[str, str | None], ...] = MARKER_LABELS

# Kubelet-created mirror pods of static pods must never be changed or blocked by us.
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"


def _shown(key: str) -> str:
    value = MARKER_VALUES[key]
    return key if value is None else f"{key}={value}"


# Why the validating hook checked nothing on a pod: what "an Airflow pod" means, in words.
NOT_AIRFLOW = (f"not an Airflow pod (no {' with '.join(_shown(k) for k in EXECUTOR_MARKERS)}, "
               f"nor {_shown(KPO_MARKER)} label) and no policy's labelSelector selects it")


def selected_by_hooks(pod: Any, labels: Sequence[tuple[str, str | None]] = DEFAULT_POD_LABELS,
                      username: str | None = None,
                      airflow_usernames: Sequence[str] = ()) -> bool:
    """What the create hooks' matchConditions (pod_match_expression or the writer condition,
    and NOT_MIRROR_POD) say of a pod, in Python: the mutation must never turn a selected pod
    into an unselected one, and the offline commands judge what the hooks would be sent."""
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    pod_labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    if MIRROR_POD_ANNOTATION in annotations:
        return False
    if username_matcher(airflow_usernames)(username):
        return True
    return any(has_label(pod_labels, key, value) for key, value in labels)
