"""As a worker running KubernetesPodOperator tasks: build each task's pod with the operator's own
build_pod_request_obj and create it with its get_or_create_pod (find, then create); a task
with "copies" makes that many pods (a retried try that did not reattach)."""

import json
import sys

from kpo_task import ARGS, context, operator

for task in ARGS["tasks"].values():
    for _copy in range(task.get("copies", 1)):
        op = operator(task)
        ctx = context(task)
        pod = op.get_or_create_pod(op.build_pod_request_obj(ctx), ctx)
        print(json.dumps({"task": task["task_id"], "pod": pod.metadata.name}))
sys.stdout.flush()
