"""For DAG authors: the annotations that ask this webhook for changes to a task's pod.

    from kubernetes.client import models as k8s
    from webhook.dag_annotations import override_annotations

    annotations = override_annotations(
        pod=k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(
            name="base", env=[k8s.V1EnvVar(name="MODE", value="full")])])),
        profiles=["highmem", "spot"],
        memory="8Gi",
    )
    # KubernetesExecutor:
    PythonOperator(..., executor_config={"pod_override": k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(annotations=annotations))})
    # KubernetesPodOperator:
    KubernetesPodOperator(..., annotations=annotations)

Only the annotations travel through Airflow: the webhook applies them in the cluster, merged
by name (see webhook/merge.py) and bounded by the admin's OverridePolicy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from webhook.policy.model import DEFAULT_ANNOTATION_PREFIX


def override_annotations(
    pod: Any = None,
    profiles: Iterable[str] = (),
    *,
    cpu: str | None = None,
    cpu_limit: str | None = None,
    memory: str | None = None,
    memory_limit: str | None = None,
    ephemeral_storage: str | None = None,
    gpu: str | int | None = None,
    node_pool: str | None = None,
    prefix: str = DEFAULT_ANNOTATION_PREFIX,
) -> dict[str, str]:
    """The annotations dict for `executor_config` pod_override metadata or KPO `annotations`.

    `pod` is a `kubernetes.client.V1Pod` or a plain dict in the same shape as pod_override.
    """
    out: dict[str, str] = {}
    if pod is not None:
        fragment = _as_dict(pod)
        if fragment:
            out[prefix + "pod-override"] = json.dumps(fragment, sort_keys=True,
                                                      separators=(",", ":"))
    names = [p.strip() for p in profiles if p and p.strip()]
    if names:
        out[prefix + "profiles"] = ",".join(names)
    short = {"cpu": cpu, "cpu-limit": cpu_limit, "memory": memory, "memory-limit": memory_limit,
             "ephemeral-storage": ephemeral_storage, "gpu": gpu, "node-pool": node_pool}
    out.update({prefix + k: str(v) for k, v in short.items() if v is not None})
    return out


def _as_dict(pod: Any) -> dict:
    if isinstance(pod, dict):
        return pod
    from kubernetes.client import ApiClient  # only DAG code pays for the client's models

    data = ApiClient().sanitize_for_serialization(pod)
    return data if isinstance(data, dict) else {}
