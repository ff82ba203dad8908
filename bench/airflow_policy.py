"""`python -m bench airflow-policy`: what the Airflow cluster policy adds to parsing a DAG.

A DAG file of N executor tasks (each with a small pod_override carrying override annotations,
as DAG authors write them) is parsed by a real Airflow DagBag (tools/airflow_venv.py's venvs)
with and without `webhook.airflow_policy.task_policy`; the best of R rounds of each is kept,
in fresh interpreters, so Airflow's own import and start-up cost is the same on both sides.

    python -m bench airflow-policy                  # 1,000 tasks, Airflow 2.10.5 and 3.3.2
    python -m bench airflow-policy --tasks 200 --rounds 2 --versions 3.3.2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from tests.support.airflow_dags import VERSIONS, airflow_env, venv_python

DAG = '''
import datetime
from kubernetes.client import models as k8s
try:
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG
    from airflow.operators.bash import BashOperator

with DAG("many_tasks", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
    for i in range({tasks}):
        BashOperator(task_id=f"t{{i}}", bash_command="echo hi", executor_config={{
            "pod_override": k8s.V1Pod(metadata=k8s.V1ObjectMeta(annotations={{
                "airflow-pod-webhook.io/profiles": "highmem",
                "airflow-pod-webhook.io/memory": "8Gi"}}))}})
'''

TIMED = """
import json, sys, time
start = time.perf_counter()
try:
    from airflow.dag_processing.dagbag import DagBag
    make = lambda: DagBag(sys.argv[1], safe_mode=False)
except ImportError:
    from airflow.models.dagbag import DagBag
    make = lambda: DagBag(sys.argv[1], include_examples=False, safe_mode=False)
ready = time.perf_counter()
bag = make()
first = time.perf_counter()
assert not bag.import_errors, bag.import_errors
again = make()  # what every later parse of the file costs in a running DAG processor
done = time.perf_counter()
print(json.dumps({"first": first - ready, "parse": done - first,
                  "tasks": len(again.dags["many_tasks"].tasks)}))
"""


def parse_seconds(version: str, home: Path, dags: Path, policy: bool) -> tuple[float, float]:
    """(first parse in a fresh process, a later parse of the same file) in seconds."""
    python = venv_python(version)
    done = subprocess.run([str(python), "-c", TIMED, str(dags)], capture_output=True, text=True,
                          timeout=600, cwd=home, env=airflow_env(version, home, dags, policy))
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return found["first"], found["parse"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench airflow-policy")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--versions", nargs="+", default=list(VERSIONS))
    args = parser.parse_args(argv)
    print("| Airflow | tasks | parse without policy | with task_policy | added | per task |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        dags = Path(tmp) / "dags"
        dags.mkdir()
        (dags / "many_tasks.py").write_text(DAG.format(tasks=args.tasks))
        for version in args.versions:
            home = Path(tmp) / version
            home.mkdir()
            plain = [parse_seconds(version, home, dags, False) for _ in range(args.rounds)]
            checked = [parse_seconds(version, home, dags, True) for _ in range(args.rounds)]
            without, with_policy = min(p[1] for p in plain), min(c[1] for c in checked)
            added = with_policy - without
            # The first parse also imports the webhook and loads the policy folder, once.
            first = min(c[0] for c in checked) - min(p[0] for p in plain)
            print(f"| {version} | {args.tasks} | {without:.2f} s | {with_policy:.2f} s | "
                  f"{added:.2f} s | {added / args.tasks * 1e3:.2f} ms | {first:.2f} s |")
    return 0
