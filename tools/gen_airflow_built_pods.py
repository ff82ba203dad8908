"""Build pods with real Airflow code, offline, into tests/fixtures/airflow-built/*.json.

Run once (needs the Airflow venvs of tools/airflow_venv.py; the tests read only the JSON):

    python tools/gen_airflow_built_pods.py   # AIRFLOW_VENV_DIR: reuse pre-built venvs

- chart-*.json: executor pods as the KubernetesExecutor builds them
  (PodGenerator.construct_pod) from each official chart 1.18 pod_template_file in
  tests/fixtures/airflow-chart-1.18/, without and with a typical pod_override (more memory,
  an env variable, a scratch emptyDir): Airflow 2.10.5 for the af2 templates, 3.3.2 for af3.
- attack-*.json: what a DAG author gets from stock Airflow arguments
  (KubernetesPodOperator.build_pod_request_obj, or a pod_override through construct_pod):
  Airflow's own Secrets by env_from and by a volume, the API server's Service labels, a
  required anti-affinity against every namespace on the OS key.

The task's context is a stand-in (dag ex, task t, run manual__1, try 1): it only gives the
labels Airflow adds from it. The hook is told the pod is built outside a cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "tests" / "fixtures" / "airflow-chart-1.18"
OUT = ROOT / "tests" / "fixtures" / "airflow-built"
NAMESPACE = "data-airflow"
RUN_ID = "manual__2026-11-21T09:15:00+00:00"

# Runs inside the Airflow venv: prints {name: pod} as JSON.
BUILD = r'''
import datetime, json, sys, types
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

version, chart, namespace, run_id = sys.argv[1:5]
af3 = version.startswith("3.")
out = {}
serialize = ApiClient().sanitize_for_serialization
args = (["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string",
         '{"token": "<redacted>"}'] if af3 else
        ["airflow", "tasks", "run", "etl", "load", run_id, "--local", "--subdir",
         "DAGS_FOLDER/etl.py"])
override = k8s.V1Pod(spec=k8s.V1PodSpec(
    containers=[k8s.V1Container(
        name="base", env=[k8s.V1EnvVar(name="MODE", value="full")],
        resources=k8s.V1ResourceRequirements(requests={"cpu": "1", "memory": "2Gi"},
                                             limits={"memory": "2Gi"}),
        volume_mounts=[k8s.V1VolumeMount(name="scratch", mount_path="/scratch")])],
    volumes=[k8s.V1Volume(name="scratch",
                          empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="1Gi"))]))
jwt_override = k8s.V1Pod(spec=k8s.V1PodSpec(
    containers=[k8s.V1Container(name="base", volume_mounts=[
        k8s.V1VolumeMount(name="jwt", mount_path="/jwt", read_only=True)])],
    volumes=[k8s.V1Volume(name="jwt", secret=k8s.V1SecretVolumeSource(
        secret_name="airflow-jwt-secret"))]))


def executor_pod(template, pod_override):
    base = PodGenerator.deserialize_model_file(template)
    pod = PodGenerator.construct_pod(
        dag_id="etl", task_id="load", pod_id="etl-load-a1b2c3d4", try_number=1,
        kube_image=f"apache/airflow:{version}", date=None, args=args,
        pod_override_object=pod_override, base_worker_pod=base, namespace=namespace,
        scheduler_job_id="7", run_id=run_id)
    return serialize(pod)


for template in sorted(t for t in chart.split(",") if t):
    stem = template.rsplit("/", 1)[-1].replace(".pod_template_file.yaml", "")
    out[f"chart-{stem}"] = executor_pod(template, None)
    out[f"chart-{stem}-pod-override"] = executor_pod(template, override)

if af3:
    plain = [t for t in chart.split(",") if t.endswith("/k8s-af3.pod_template_file.yaml")]
    out["attack-executor-jwt-volume"] = executor_pod(plain[0], jwt_override)
    with DAG("ex", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        kpos = {
            "attack-kpo-env-from-metadata": KubernetesPodOperator(
                task_id="env_from", image="ghcr.io/acme/ml:2.3", namespace=namespace,
                name="env-from", env_from=[k8s.V1EnvFromSource(
                    secret_ref=k8s.V1SecretEnvSource(name="airflow-metadata"))]),
            "attack-kpo-api-server-labels": KubernetesPodOperator(
                task_id="labels", image="ghcr.io/acme/ml:2.3", namespace=namespace,
                name="labels", labels={"tier": "airflow", "component": "api-server",
                                       "release": "airflow"}),
            "attack-kpo-anti-affinity": KubernetesPodOperator(
                task_id="affinity", image="ghcr.io/acme/ml:2.3", namespace=namespace,
                name="affinity", affinity=k8s.V1Affinity(
                    pod_anti_affinity=k8s.V1PodAntiAffinity(
                        required_during_scheduling_ignored_during_execution=[
                            k8s.V1PodAffinityTerm(
                                label_selector=k8s.V1LabelSelector(match_expressions=[
                                    k8s.V1LabelSelectorRequirement(key="app",
                                                                   operator="Exists")]),
                                namespace_selector=k8s.V1LabelSelector(),
                                topology_key="kubernetes.io/os")]))),
        }
    for name, op in kpos.items():
        op.__dict__["hook"] = types.SimpleNamespace(is_in_cluster=False)
        ti = types.SimpleNamespace(dag_id="ex", task_id=op.task_id, map_index=-1,
                                   try_number=1)
        context = {"ti": ti, "run_id": run_id, "dag": dag}
        out[name] = serialize(op.build_pod_request_obj(context))
print(json.dumps(out))
'''


def main() -> int:
    sys.path.insert(0, str(ROOT / "tools"))
    from airflow_venv import airflow_venv

    OUT.mkdir(parents=True, exist_ok=True)
    for version, prefix in (("2.10.5", "k8s-af2"), ("3.3.2", "k8s-af3")):
        templates = ",".join(str(p) for p in sorted(CHART.glob(f"{prefix}*.yaml")))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        env["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
        done = subprocess.run([str(airflow_venv(version)), "-c", BUILD, version, templates,
                               NAMESPACE, RUN_ID], capture_output=True, text=True, env=env,
                              check=True, timeout=600)
        for name, pod in json.loads(done.stdout.strip().splitlines()[-1]).items():
            (OUT / f"{name}.json").write_text(json.dumps(pod, indent=1, sort_keys=True) + "\n")
            print(f"wrote {name}.json ({version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
