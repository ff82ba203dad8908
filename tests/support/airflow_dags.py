"""Parse DAG files with a real Apache Airflow (tools/airflow_venv.py's venvs), as its DAG
processor does: with or without `webhook.airflow_policy.task_policy` in airflow_local_settings.

`parse(version, dags, home)` returns the DagBag's import errors and, for every task, the pod
real Airflow builds for it (PodGenerator.construct_pod for executor tasks, the operator's
build_pod_request_obj for KubernetesPodOperator tasks). Our package is not installed in the
venv: the repo is put on PYTHONPATH, as the README tells admins to pip install it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import ROOT

DAGS = ROOT / "tests" / "fixtures" / "airflow-dags"
POLICIES = ROOT / "policies"
VERSIONS = ("2.10.5", "3.3.2")
EXECUTOR_POD = ROOT / "tests" / "fixtures" / "airflow-pods" / "airflow3-executor.json"
POLICY_LINE = "from webhook.airflow_policy import task_policy  # noqa: F401\n"
HOOK_LINE = "from webhook.airflow_policy import pod_mutation_hook  # noqa: F401\n"

PARSE = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(sys.argv[1], safe_mode=False)
except ImportError:
    from airflow.models.dagbag import DagBag
    bag = DagBag(sys.argv[1], include_examples=False, safe_mode=False)
from webhook.airflow_policy import pod_for_task
pods = {}
for dag_id in sorted(bag.dag_ids):
    for task in bag.dags[dag_id].tasks:
        built = pod_for_task(task)
        if built is not None:
            pods[f"{dag_id}.{task.task_id}"] = built.pod
print(json.dumps({"errors": {k.rsplit("/", 1)[-1]: v for k, v in bag.import_errors.items()},
                  "pods": pods}))
"""


def venv_python(version: str) -> Path:
    """The venv's python, built on first use; skips only if it cannot be built at all."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from airflow_venv import airflow_venv
    finally:
        sys.path.pop(0)
    try:
        return airflow_venv(version)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot build an Airflow {version} venv here: {exc}")


def pod_template(folder: Path) -> Path:
    """The admin's pod_template_file: the spec of a real Airflow 3 executor pod."""
    pod = json.loads(EXECUTOR_POD.read_text())
    path = folder / "pod_template.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                                    "metadata": {"name": "placeholder"}, "spec": pod["spec"]}))
    return path


def airflow_env(version: str, home: Path, dags: Path, policy: bool | str,
                policies: Path = POLICIES, namespace: str = "airflow") -> dict[str, str]:
    settings = home / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    # True: the cluster policy; a string: that airflow_local_settings.py
    text = policy if isinstance(policy, str) else POLICY_LINE if policy else ""
    (settings / "airflow_local_settings.py").write_text(text)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(home / f"airflow-{version}"),
        "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": str(pod_template(home)),
        "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": namespace,
        "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_REPOSITORY": "apache/airflow",
        "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_TAG": "3.3.2",
        "AIRFLOW_POD_WEBHOOK_POLICIES": str(policies),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(settings), str(dags)]),
    }


def parse(version: str, home: Path, *, policy: bool | str, dags: Path = DAGS,
          policies: Path = POLICIES, script: str = PARSE, args: tuple[str, ...] = ()
          ) -> dict[str, Any]:
    """Parse `dags` with Airflow `version`; {"errors": {file: text}, "pods": {dag.task: pod}}."""
    python = venv_python(version)
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([str(python), "-c", script, str(dags), *args], capture_output=True,
                          text=True, timeout=300, cwd=home,
                          env=airflow_env(version, home, dags, policy, policies))
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# What the scheduler (executor tasks) and the worker (KPO tasks) do when a task starts: build
# the final pod with the admin's pod_mutation_hook; the outcome of each, as text.
BUILD_AT_RUN_TIME = """
import json, sys
from types import SimpleNamespace
try:
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(sys.argv[1], safe_mode=False)
except ImportError:
    from airflow.models.dagbag import DagBag
    bag = DagBag(sys.argv[1], include_examples=False, safe_mode=False)
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from webhook.airflow_policy import _ParseTimeHook
base = PodGenerator.deserialize_model_file(sys.argv[2])
out = {}
for dag_id in sorted(bag.dag_ids):
    for task in bag.dags[dag_id].tasks:
        try:
            if isinstance(task, KubernetesPodOperator):
                task.__dict__["hook"] = _ParseTimeHook()  # a worker's cluster access
                ti = SimpleNamespace(dag_id=dag_id, task_id=task.task_id, map_index=-1,
                                     try_number=1)
                task.build_pod_request_obj({"ti": ti, "run_id": "manual",
                                            "dag": bag.dags[dag_id]})
            else:
                PodGenerator.construct_pod(
                    dag_id=dag_id, task_id=task.task_id, pod_id=dag_id.replace("_", "-"),
                    try_number=1, kube_image="apache/airflow:3.3.2", date=None, args=[],
                    pod_override_object=(task.executor_config or {}).get("pod_override"),
                    base_worker_pod=base, namespace="airflow", scheduler_job_id="1",
                    run_id="manual", with_mutation_hook=True)
            out[dag_id] = "built"
        except Exception as exc:
            cause = exc.__cause__
            out[dag_id] = (f"{type(exc).__name__}({exc})"
                           + (f" from {type(cause).__name__}: {cause}" if cause else ""))
print(json.dumps({"errors": bag.import_errors, "pods": out}))
"""
