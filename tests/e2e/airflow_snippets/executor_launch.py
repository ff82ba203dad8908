"""As the scheduler of job ARGS["job_id"]: build worker pods with Airflow's own PodGenerator from
the pod template file and create them with the executor's own AirflowKubernetesScheduler."""

import json
import os
import sys
import types

from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor
from airflow.providers.cncf.kubernetes.executors.kubernetes_executor_utils import (
    get_base_pod_from_template,
)
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from airflow.version import version as airflow_version

ARGS = json.loads(os.environ["SNIPPET_ARGS"])

executor = KubernetesExecutor()
executor.job_id = ARGS["job_id"]
# Airflow 2's start() also clears stuck queued task instances from the metadata DB, which
# this harness has none of; nothing else in start() reads the DB.
executor.clear_not_launched_queued_tasks = types.MethodType(lambda self, *a, **k: None, executor)
executor.start()
base = get_base_pod_from_template(executor.kube_config.pod_template_file, executor.kube_config)
for task in ARGS["tasks"]:
    if airflow_version.startswith("2."):
        args = ["airflow", "tasks", "run", task["dag_id"], task["task_id"], task["run_id"],
                "--local", "--subdir", "DAGS_FOLDER/example.py"]
    else:
        workload = {"ti": {"id": task["ti_id"], "dag_id": task["dag_id"],
                           "task_id": task["task_id"], "run_id": task["run_id"],
                           "try_number": 1, "map_index": -1}}
        args = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string",
                json.dumps(workload)]
    pod = PodGenerator.construct_pod(
        namespace=executor.kube_config.kube_namespace,
        scheduler_job_id=executor.scheduler_job_id,
        pod_id=task["pod_id"],
        dag_id=task["dag_id"],
        task_id=task["task_id"],
        kube_image=executor.kube_config.kube_image,
        try_number=1,
        map_index=-1,
        date=None,
        run_id=task["run_id"],
        args=args,
        pod_override_object=None,
        base_worker_pod=base,
        with_mutation_hook=True,
    )
    created = executor.kube_scheduler.run_pod_async(pod)
    print(json.dumps({"task": task["task_id"], "pod": created.metadata.name}))
sys.stdout.flush()
# The watcher processes start() spawned hold no state worth a clean shutdown.
os._exit(0)
