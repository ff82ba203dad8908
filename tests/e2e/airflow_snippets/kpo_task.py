"""What the KubernetesPodOperator snippets share: each task's operator, built with the same
arguments at launch and at cleanup (so find_pod finds what get_or_create_pod made), and the
task-instance context the operator's label selector reads. On the snippets' PYTHONPATH."""

import json
import os
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
