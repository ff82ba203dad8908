"""As a worker running KubernetesPodOperator tasks: build each task's pod with the operator's own
build_pod_request_obj and create it with its get_or_create_pod (find, then create); a task
with "copies" makes that many pods (a retried try that did not reattach)."""

import json
import os
import sys
import types

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

ARGS = json.loads(os.environ["SNIPPET_ARGS"])


def operator(task):
    return KubernetesPodOperator(
        task_id=task["task_id"], name=task["name"], namespace=ARGS["namespace"],
        image="busybox:1.36", cmds=["true"], in_cluster=False,
        config_file=os.environ["KUBECONFIG"], on_finish_action=task["on_finish_action"],
        reattach_on_restart=task.get("reattach_on_restart", True), get_logs=False,
        do_xcom_push=False)


def context(task):
    ti = types.SimpleNamespace(dag_id=task["dag_id"], task_id=task["task_id"], map_index=-1,
                               try_number=1)
    return {"ti": ti, "run_id": task["run_id"], "dag": types.SimpleNamespace()}


for task in ARGS["tasks"].values():
    for _copy in range(task.get("copies", 1)):
        op = operator(task)
        ctx = context(task)
        pod = op.get_or_create_pod(op.build_pod_request_obj(ctx), ctx)
        print(json.dumps({"task": task["task_id"], "pod": pod.metadata.name}))
sys.stdout.flush()
