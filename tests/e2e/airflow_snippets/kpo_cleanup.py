"""The KubernetesPodOperator finishing its pods, with its own functions: cleanup() after the pod
ended (patch_already_checked when the pod is kept or failed, process_pod_deletion when the
on_finish_action says so), on_kill() when the task is killed, and find_pod() retiring the older
of two pods with the same labels (process_duplicate_label_pods)."""

import json
import sys

from kpo_task import ARGS, context, operator

for step, task in ARGS["tasks"].items():
    op = operator(task)
    ctx = context(task)
    pod = op.find_pod(ARGS["namespace"], ctx)
    if step == "duplicate":
        # find_pod found two pods: process_duplicate_label_pods labelled the older one
        # already_checked and, on_finish_action being delete_pod, deleted it.
        outcome = "kept the newer"
    elif step == "killed":
        op.pod = pod
        op.on_kill()
        outcome = "killed"
    else:
        remote_pod = op.pod_manager.read_pod(pod)
        try:
            op.cleanup(pod, remote_pod)
            outcome = "ok"
        except Exception as exc:  # a failed pod ends the task with AirflowException
            outcome = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    print(json.dumps({"step": step, "pod": pod.metadata.name, "outcome": outcome}))
sys.stdout.flush()
