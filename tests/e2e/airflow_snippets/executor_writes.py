"""A new scheduler (job ARGS["job_id"]) adopts the previous scheduler's pods and finishes them,
with the KubernetesExecutor's own functions:

- try_adopt_task_instances: adopt_launched_task relabels a running pod `airflow-worker=<new>`
  and _adopt_completed_pods relabels the Succeeded ones;
- _change_state with delete_worker_pods=False marks a finished pod `airflow_executor_done`;
- _change_state with delete_worker_pods=True deletes a finished pod;
- revoke_task labels the running pod `airflow_pod_revoked` and deletes it.
"""

import json
import os
import sys
import types

from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor
from airflow.utils.state import TaskInstanceState
from airflow.version import version as airflow_version

ARGS = json.loads(os.environ["SNIPPET_ARGS"])
NAMESPACE = ARGS["namespace"]


def task_instance(task):
    key = TaskInstanceKey(task["dag_id"], task["task_id"], task["run_id"], 1, -1)
    return types.SimpleNamespace(
        key=key, dag_id=task["dag_id"], task_id=task["task_id"], run_id=task["run_id"],
        map_index=-1, try_number=1, queued_by_job_id=ARGS["previous_job_id"],
        id=task.get("ti_id"), executor_config={})


def change_state(executor, task, pod_name):
    ti = task_instance(task)
    if airflow_version.startswith("2."):
        executor._change_state(ti.key, TaskInstanceState.SUCCESS, pod_name, NAMESPACE)
    else:
        from airflow.providers.cncf.kubernetes.executors.kubernetes_executor_types import (
            KubernetesResults,
        )

        executor._change_state(KubernetesResults(ti.key, TaskInstanceState.SUCCESS, pod_name,
                                                 NAMESPACE, "0", None))


tasks = ARGS["tasks"]
steps = ARGS.get("steps", ["adopt", "executor_done", "delete", "revoke"])
executor = KubernetesExecutor()
executor.job_id = ARGS["job_id"]
executor.clear_not_launched_queued_tasks = types.MethodType(lambda self, *a, **k: None, executor)
executor.start()

if "adopt" in steps:
    # The database hands the new scheduler the running task instance the old one queued.
    not_adopted = executor.try_adopt_task_instances([task_instance(tasks["running"])])
    print(json.dumps({"step": "adopt", "not_adopted": [str(ti.key) for ti in not_adopted]}))

if "executor_done" in steps:
    executor.kube_config.delete_worker_pods = False
    change_state(executor, tasks["done"], ARGS["pods"]["done"])
    print(json.dumps({"step": "executor_done"}))

if "delete" in steps:
    executor.kube_config.delete_worker_pods = True
    change_state(executor, tasks["deleted"], ARGS["pods"]["deleted"])
    print(json.dumps({"step": "delete"}))

if "revoke" in steps:
    executor.revoke_task(ti=task_instance(tasks["running"]))
    print(json.dumps({"step": "revoke"}))
sys.stdout.flush()
os._exit(0)
