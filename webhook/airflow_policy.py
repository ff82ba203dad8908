"""The webhook's verdict when a DAG is parsed: an Airflow cluster policy.

An admin enables it with one line in `airflow_local_settings.py`:

    from webhook.airflow_policy import task_policy  # noqa: F401

For every task Airflow parses, it builds the pod Airflow would build for it, as far as that is
known at parse time, asks the one decision core (webhook.decide) what the webhook would do
with it, and raises `AirflowClusterPolicyViolation` with the webhook's own message when the
pod would be denied or an override refused: the DAG shows as a DAG import error in the UI, and
no task of it ever runs. Warnings are logged (the DAG processor's log for the file).

- **Executor tasks** (the task's executor is the KubernetesExecutor): the admin's
  `[kubernetes_executor] pod_template_file` (a pod with one `base` container when unset), the
  task's `executor_config["pod_override"]` and its override annotations, merged by Airflow's own
  `PodGenerator.construct_pod`, as the scheduler will.
- **KubernetesPodOperator tasks**: the pod the operator's own `build_pod_request_obj` describes
  from its arguments, with the labels the task instance will add.
- Anything whose value is still a Jinja template (`{{ ... }}`) is only known when the task
  runs: what it breaks is logged, not raised; the webhook judges the rendered pod.

The policy folder is the webhook's: `AIRFLOW_POD_WEBHOOK_POLICIES`, default
`/etc/airflow-pod-webhook/policies` (where deploy/ mounts them in the webhook's pod; mount the
same ConfigMap into the scheduler and DAG processor). A folder that is missing or does not
load is logged once and checks nothing: the webhook still judges every pod at creation.

Base install only: nothing here imports the server's packages; Airflow, its cncf.kubernetes
provider and the kubernetes client are imported from the running Airflow when a task needs
them. Airflow 2.10+ and 3.x.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from webhook.airflow_pods import identify
from webhook.decide import DENY, Decision, PodRequest, decide
from webhook.policy.load import load_policy_dir
from webhook.policy.model import PolicySet

POLICIES_ENV = "AIRFLOW_POD_WEBHOOK_POLICIES"
DEFAULT_POLICIES = "/etc/airflow-pod-webhook/policies"
RECHECK_SECONDS = 5.0  # how often the folder is looked at again for changed files
TEMPLATE_MARK = "{{"
KUBERNETES_EXECUTOR = "KubernetesExecutor"
log = logging.getLogger("airflow.pod_webhook")


@dataclass(frozen=True)
class TaskPod:
    """The pod a task would get, and how it was built."""

    pod: dict
    namespace: str
    kind: str  # executor | kpo
    # What the pod is made of besides the task's identity (template, pod_override, image):
    # tasks of one DAG with the same shape and the same policies get the same verdict.
    shape: str = ""


# ---------------------------------------------------------------------------------------------
# The decision, pure: a task's pod and the policy set in, the text to raise (or None) out


def violation_text(task_pod: TaskPod, decision: Decision) -> str | None:
    """What a DAG author reads in the import error; None when the pod would be admitted."""
    if decision.verdict != DENY or _templated(decision):
        return None
    hook = "mutating" if decision.refusals else "validating"
    return (f"airflow-pod-webhook would deny this task's {task_pod.kind} pod ({hook} "
            f"hook): {decision.message}")


def _templated(decision: Decision) -> bool:
    """Every reason to deny names a value still templated: only known when the task runs."""
    reasons = [r.message for r in decision.refusals] or [
        v.message for v in decision.violations.get("enforce", ())]
    return bool(reasons) and all(TEMPLATE_MARK in reason for reason in reasons)


def judge(task_pod: TaskPod, policies: PolicySet) -> tuple[Decision, str | None]:
    decision = decide(PodRequest(task_pod.pod, task_pod.namespace), policies)
    return decision, violation_text(task_pod, decision)


_admitted: dict[tuple, Decision] = {}
ADMITTED_CACHE_SIZE = 4096


def judge_once_per_shape(task_pod: TaskPod, policies: PolicySet, today: date
                         ) -> tuple[Decision, str | None]:
    """judge(), answered from memory for a task whose DAG, pod shape and matching policies
    are those of a task admitted before (a DAG of 1,000 alike tasks is judged once). A denial
    is always judged afresh: its message names the task."""
    if not task_pod.shape:
        return judge(task_pod, policies)
    task = identify(task_pod.pod, task_pod.namespace)
    key = (policies.revision, task_pod.namespace, task.dag_id, task.pod_type, task_pod.shape,
           _names(policies.templates_for(task)), _names(policies.task_policies_for(task)),
           _names([policies.override_policy_for(task)]),
           _names(policies.validation_policies_for(task)), _names(policies.envelopes_for(task)),
           _names(policies.exemptions_for(task, today)))
    known = _admitted.get(key)
    if known is not None:
        return known, None
    decision, text = judge(task_pod, policies)
    if decision.verdict != DENY:
        if len(_admitted) >= ADMITTED_CACHE_SIZE:
            _admitted.clear()
        _admitted[key] = decision
    return decision, text


def _names(found: Any) -> tuple[str, ...]:
    return tuple(getattr(p, "name", "") for p in found if p is not None)


# ---------------------------------------------------------------------------------------------
# At run time: the final pod, checked before it is sent


class PodDenied(ValueError):
    """The webhook would deny this pod: raised by pod_mutation_hook with its reason."""


_parse_time = threading.local()


def pod_mutation_hook(pod: Any) -> None:
    """Airflow's pod_mutation_hook: judge the final pod with the webhook's core before it is
    sent, and raise PodDenied with the webhook's reason instead of letting kube-apiserver's
    answer arrive as a client exception dump.

    Where the reason then shows: for a KubernetesPodOperator task, in the task's own log (the
    worker builds the pod: a traceback ending in `PodDenied: <reason>`, and the webhook's
    warnings logged above it); for an executor task, in the scheduler's log (`Pod Mutation
    Hook failed for the task ... Details: <reason>`), and the task fails at once, as on a
    denial. Enabled with `from webhook.airflow_policy import pod_mutation_hook` (call it last
    from an existing hook of your own)."""
    if getattr(_parse_time, "active", False):
        return  # task_policy builds the pod and judges it itself
    policies = _policies()
    if policies is None:
        return
    body = _serialise(pod)
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    decision = decide(PodRequest(body, meta.get("namespace") or "default"), policies)
    for warning in decision.warnings:
        log.warning("airflow-pod-webhook warns: %s", warning)
    if decision.verdict == DENY:
        hook = "mutating" if decision.refusals else "validating"
        raise PodDenied(f"airflow-pod-webhook denies this pod ({hook} hook): "
                        f"{decision.message}")


# ---------------------------------------------------------------------------------------------
# The cluster policy


def task_policy(task: Any) -> None:
    """Airflow's task cluster policy: raise for a task whose pod the webhook would deny."""
    policies = _policies()
    if policies is None:
        return
    task_pod = pod_for_task(task)
    if task_pod is None:
        return
    decision, text = judge_once_per_shape(task_pod, policies, date.today())
    where = f"{getattr(task, 'dag_id', None)}.{getattr(task, 'task_id', None)}"
    for warning in decision.warnings:
        log.warning("task %s: airflow-pod-webhook warns: %s", where, warning)
    if decision.verdict == DENY and text is None:
        log.warning("task %s: airflow-pod-webhook would deny the pod unless its templated "
                    "values render to allowed ones: %s", where, decision.message)
    if text is not None:
        from airflow.exceptions import AirflowClusterPolicyViolation

        raise AirflowClusterPolicyViolation(text)


def pod_for_task(task: Any) -> TaskPod | None:
    """The pod Airflow would build for the task, when the task runs in one and it can be
    built at parse time; None otherwise."""
    if _is_kpo(task):
        return _kpo_pod(task)
    if _runs_on_kubernetes_executor(task):
        return _executor_pod(task)
    return None


def _is_kpo(task: Any) -> bool:
    try:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    except ImportError:
        return False
    return isinstance(task, KubernetesPodOperator)


_conf_read: dict[tuple[str, str, str], tuple[float, str]] = {}


def _conf(section: str, key: str, fallback: str = "") -> str:
    """Airflow's configuration, read again every few seconds (a read costs ~60 µs)."""
    now = time.monotonic()
    known = _conf_read.get((section, key, fallback))
    if known is not None and now - known[0] < RECHECK_SECONDS:
        return known[1]
    from airflow.configuration import conf

    value = conf.get(section, key, fallback=fallback)
    value = value if isinstance(value, str) else fallback
    _conf_read[(section, key, fallback)] = (now, value)
    return value


def _runs_on_kubernetes_executor(task: Any) -> bool:
    """The task's executor (its own, else the first configured) is the KubernetesExecutor,
    or a Celery/Local-KubernetesExecutor and the task is on its kubernetes queue."""
    chosen = getattr(task, "executor", None) or _conf("core", "executor").split(",")[0]
    name = chosen.strip().rsplit(".", 1)[-1].split(":")[-1]
    if name == KUBERNETES_EXECUTOR:
        return True
    if name in ("CeleryKubernetesExecutor", "LocalKubernetesExecutor"):
        section = "celery_kubernetes_executor" if name.startswith("Celery") else (
            "local_kubernetes_executor")
        return getattr(task, "queue", None) == _conf(section, "kubernetes_queue", "kubernetes")
    return False


_client: list[Any] = []


def _serialise(pod: Any) -> dict:
    if not _client:
        from kubernetes.client import ApiClient

        _client.append(ApiClient())
    return _client[0].sanitize_for_serialization(pod)


_base_pods: dict[tuple[str, float], Any] = {}


def _base_worker_pod(path: str) -> tuple[Any, tuple[str, float]]:
    from kubernetes.client import models as k8s

    if not path:
        return k8s.V1Pod(metadata=k8s.V1ObjectMeta(), spec=k8s.V1PodSpec(
            containers=[k8s.V1Container(name="base")])), ("", 0.0)
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    key = (path, os.stat(path).st_mtime)
    if key not in _base_pods:
        _base_pods.clear()
        _base_pods[key] = PodGenerator.deserialize_model_file(path)
    return _base_pods[key], key


# PodGenerator.construct_pod deep-copies kubernetes client models (~40 ms a task): it runs once
# per distinct (pod template, pod_override, image, namespace), for a placeholder task, and each
# task gets that pod with its own identity written in as construct_pod writes it.
PLACEHOLDER_DAG, PLACEHOLDER_TASK = "airflow-pod-webhook-dag", "airflow-pod-webhook-task"
_built: dict[str, str] = {}
BUILT_CACHE_SIZE = 256


def _executor_pod(task: Any) -> TaskPod | None:
    try:
        from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
    except ImportError:
        return None  # no provider, no KubernetesExecutor
    section = "kubernetes_executor"
    namespace = _conf(section, "namespace", "default") or "default"
    repository = _conf(section, "worker_container_repository")
    tag = _conf(section, "worker_container_tag")
    image = f"{repository}:{tag}" if repository and tag else ""
    config = getattr(task, "executor_config", None) or {}
    override = config.get("pod_override") if isinstance(config, dict) else None
    base, template_key = _base_worker_pod(_conf(section, "pod_template_file"))
    key = json.dumps([template_key, image, namespace,
                      _serialise(override) if override is not None else None],
                     sort_keys=True, default=str)
    text = _built.get(key)
    if text is None:
        _parse_time.active = True
        try:
            pod = PodGenerator.construct_pod(
                dag_id=PLACEHOLDER_DAG, task_id=PLACEHOLDER_TASK,
                pod_id=_pod_id(PLACEHOLDER_DAG, PLACEHOLDER_TASK), try_number=1,
                kube_image=image, date=None, args=[], pod_override_object=override,
                base_worker_pod=base, namespace=namespace, scheduler_job_id="0",
                run_id="parse-time", map_index=-1, with_mutation_hook=True)
        finally:
            _parse_time.active = False
        text = json.dumps(_serialise(pod))
        if len(_built) >= BUILT_CACHE_SIZE:
            _built.clear()
        _built[key] = text
    body = json.loads(text)
    meta = body.setdefault("metadata", {})
    meta["name"] = _pod_id(task.dag_id, task.task_id)
    meta.setdefault("annotations", {}).update(dag_id=task.dag_id, task_id=task.task_id)
    # As build_labels_for_k8s_executor_pod writes them; the placeholder's other labels stand.
    meta.setdefault("labels", {}).update(dag_id=_safe_label(task.dag_id),
                                         task_id=_safe_label(task.task_id))
    for container in (body.get("spec") or {}).get("containers") or []:
        if container.get("name") == "base":
            container["args"] = ["airflow", "tasks", "run", task.dag_id, task.task_id]
    return TaskPod(body, meta.get("namespace") or namespace, "executor", shape=key)


_safe_labels: dict[str, str] = {}


def _safe_label(value: str) -> str:
    """Airflow's make_safe_label_value (a regex pass, ~0.2 ms), once per value."""
    if value not in _safe_labels:
        from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value

        if len(_safe_labels) >= BUILT_CACHE_SIZE * 16:
            _safe_labels.clear()
        _safe_labels[value] = make_safe_label_value(value)
    return _safe_labels[value]


def _pod_id(dag_id: str, task_id: str) -> str:
    from airflow.providers.cncf.kubernetes.kubernetes_helper_functions import create_unique_id

    return create_unique_id(dag_id, task_id, unique=False)


class _ParseTimeHook:
    """What build_pod_request_obj asks the operator's hook, answered without a cluster (the
    real hook would read a connection and load a kubeconfig)."""

    is_in_cluster = False

    def get_namespace(self) -> None:
        return None

    def get_xcom_sidecar_container_image(self) -> None:
        return None

    def get_xcom_sidecar_container_resources(self) -> None:
        return None

    def get_xcom_sidecar_container_security_context(self) -> None:
        return None


def _kpo_pod(task: Any) -> TaskPod | None:
    # build_pod_request_obj extends env_vars in place and caches the hook: both are put back,
    # so the task runs exactly as it would have without this check.
    saved = {k: task.__dict__[k] for k in ("env_vars", "hook") if k in task.__dict__}
    try:
        task.__dict__["hook"] = _ParseTimeHook()
        _parse_time.active = True
        pod = task.build_pod_request_obj(None)
    finally:
        _parse_time.active = False
        task.__dict__.pop("hook", None)
        task.__dict__.update(saved)
    labels = pod.metadata.labels
    # What the task instance adds when it runs (KubernetesPodOperator._get_ti_pod_labels).
    labels.update({"dag_id": task.dag_id, "task_id": task.task_id, "run_id": "parse-time",
                   "kubernetes_pod_operator": "True", "try_number": "1"})
    body = _serialise(pod)
    return TaskPod(body, (body.get("metadata") or {}).get("namespace") or "default", "kpo")


# ---------------------------------------------------------------------------------------------
# The policy set, read like the webhook reads it, looked at again every few seconds


class _Folder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.path = ""
        self.signature: tuple = ()
        self.checked = 0.0
        self.policies: PolicySet | None = None
        self.reported = ""

    def get(self, path: str, now: float) -> PolicySet | None:
        with self.lock:
            if path == self.path and now - self.checked < RECHECK_SECONDS:
                return self.policies
            self.checked = now
            signature = _signature(Path(path))
            if path == self.path and signature == self.signature:
                return self.policies
            self.path, self.signature = path, signature
            result = load_policy_dir(path)
            self.policies = result.policy_set
            if result.policy_set is None:
                problems = "; ".join(str(e) for e in result.errors[:5])
                if problems != self.reported:
                    log.error("airflow-pod-webhook: policy folder %s (%s) does not load, tasks "
                              "are not checked at parse time: %s", path, POLICIES_ENV, problems)
                self.reported = problems
            return self.policies


def _signature(folder: Path) -> tuple:
    try:
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                            for p in folder.iterdir()))
    except OSError:
        return ()


_FOLDER = _Folder()


def _policies() -> PolicySet | None:
    return _FOLDER.get(os.environ.get(POLICIES_ENV) or DEFAULT_POLICIES, time.monotonic())


# Loaded when airflow_local_settings imports this module: the processes Airflow forks to parse
# DAG files inherit the parsed set instead of each loading it again.
_policies()
