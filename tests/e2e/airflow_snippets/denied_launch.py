"""A task whose pod the webhook denies, launched as Airflow launches it: the executor's pod (built
by PodGenerator.construct_pod with the admin's pod_mutation_hook, created by the executor's
AirflowKubernetesScheduler) as the scheduler, or a KubernetesPodOperator's (build_pod_request_obj,
get_or_create_pod) as a worker. Prints what the task's failure says: the exception's text."""

import json
import os
import sys
import types

from kubernetes.client import models as k8s

ARGS = json.loads(os.environ["SNIPPET_ARGS"])
PRIVILEGED = k8s.V1SecurityContext(privileged=True)


def report(kind, exc):
    print(json.dumps({"kind": kind, "type": type(exc).__name__, "text": str(exc),
                      "cause": str(exc.__cause__) if exc.__cause__ else ""}))


if ARGS["kind"] == "kpo":
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    op = KubernetesPodOperator(
        task_id="score", name="denied-kpo", namespace=ARGS["namespace"], image="busybox:1.36",
        cmds=["true"], in_cluster=False, config_file=os.environ["KUBECONFIG"], get_logs=False,
        do_xcom_push=False, container_security_context=PRIVILEGED)
    ti = types.SimpleNamespace(dag_id="runtime_reason", task_id="score", map_index=-1,
                               try_number=1)
    ctx = {"ti": ti, "run_id": "manual__1", "dag": types.SimpleNamespace()}
    try:
        op.get_or_create_pod(op.build_pod_request_obj(ctx), ctx)
        print(json.dumps({"kind": "kpo", "type": "created"}))
    except Exception as exc:  # what the task runner logs as the task's failure
        report("kpo", exc)
else:
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import (
        KubernetesExecutor,
    )
    from airflow.providers.cncf.kubernetes.executors.kubernetes_executor_utils import (
        get_base_pod_from_template,
    )
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    executor = KubernetesExecutor()
    executor.job_id = 1
    executor.clear_not_launched_queued_tasks = types.MethodType(lambda self, *a, **k: None,
                                                                executor)
    executor.start()
    base = get_base_pod_from_template(executor.kube_config.pod_template_file,
                                      executor.kube_config)
    try:
        pod = PodGenerator.construct_pod(
            namespace=executor.kube_config.kube_namespace,
            scheduler_job_id=executor.scheduler_job_id, pod_id="runtime-reason-work",
            dag_id="runtime_reason", task_id="work", kube_image=executor.kube_config.kube_image,
            try_number=1, map_index=-1, date=None, run_id="manual__1", args=["true"],
            pod_override_object=k8s.V1Pod(spec=k8s.V1PodSpec(containers=[
                k8s.V1Container(name="base", security_context=PRIVILEGED)])),
            base_worker_pod=base, with_mutation_hook=True)
        executor.kube_scheduler.run_pod_async(pod)
        print(json.dumps({"kind": "executor", "type": "created"}))
    except Exception as exc:  # what the executor passes to fail(key, info)
        report("executor", exc)
    sys.stdout.flush()
    os._exit(0)
