"""Run inside an Airflow venv: build KubernetesExecutor worker pods the way the scheduler does.

    echo '[{"template": PATH, "namespace": NS, "override": {...} or null}, ...]' \
        | python build_executor_pod.py

Airflow's own PodGenerator.construct_pod (cncf.kubernetes provider): the pod_template_file as
the base worker pod, then Airflow's fields (labels, annotations, args, image), then the task's
executor_config pod_override (a V1Pod as JSON). Prints the pods, as the API server would
receive them, as one JSON list.
"""

from __future__ import annotations

import json
import sys

from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s


def build(api: ApiClient, template: str, namespace: str, override: dict | None) -> dict:
    pod = PodGenerator.construct_pod(
        dag_id="etl", task_id="load", pod_id="etl-load-x1", try_number=1,
        kube_image="apache/airflow:custom", date=None,
        args=["airflow", "tasks", "run", "etl", "load", "manual__1"],
        pod_override_object=(api._ApiClient__deserialize_model(override, k8s.V1Pod)
                             if override else None),
        base_worker_pod=PodGenerator.deserialize_model_file(template),
        namespace=namespace, scheduler_job_id="7", run_id="manual__1")
    return api.sanitize_for_serialization(pod)


if __name__ == "__main__":
    client = ApiClient()
    jobs = json.load(sys.stdin)
    print(json.dumps([build(client, j["template"], j["namespace"], j["override"])
                      for j in jobs]))
