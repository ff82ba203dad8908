"""Run REAL Airflow code (the venvs tools/airflow_venv.py builds) against the e2e kube-apiserver,
authenticated as a real ServiceAccount of the official Helm chart.

The general piece is `RealAirflow.run`: a python snippet, run by a given Airflow version's own
interpreter, with a kubeconfig holding a TokenRequest token of a ServiceAccount, returns exit code,
stdout and stderr. Our package is not installed there and the repo is not on its path: the
snippet sees exactly what an Airflow user's scheduler or worker sees.

On top of it, `airflow_writes` drives the writes Airflow itself sends to live pods (the
KubernetesExecutor adopting, finishing, revoking and deleting pods; the KubernetesPodOperator's
cleanup) through the snippets in tests/e2e/airflow_snippets/, and returns every write as the
recorder prelude saw it leave the kubernetes client. tools/capture_airflow_requests.py stores
them as tests/fixtures/airflow-requests/<version>/*.json; the e2e tests replay Airflow live and
compare.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.airflow_venv import PROVIDERS, airflow_venv

REPO = Path(__file__).resolve().parents[2]
SNIPPETS = Path(__file__).resolve().parent / "airflow_snippets"
FIXTURES = REPO / "tests" / "fixtures" / "airflow-requests"

VERSIONS = tuple(sorted(PROVIDERS))
RELEASE = "airflow"  # the Helm release: ServiceAccounts airflow-scheduler and airflow-worker
SCHEDULER_SA, WORKER_SA = f"{RELEASE}-scheduler", f"{RELEASE}-worker"
RUN_TIMEOUT = 300.0
PREVIOUS_JOB, NEW_JOB = 1, 2  # the scheduler that launched the pods, the one that adopts them
RUN_ID = "manual__2026-01-01T00:00:00+00:00"
DAG_ID = "webhook_e2e"

# The official chart's templates/rbac/pod-launcher-role.yaml (multiNamespaceMode off) and its
# pod-launcher-rolebinding.yaml with executor KubernetesExecutor: scheduler and worker bound.
POD_LAUNCHER_RULES = [
    {"apiGroups": [""], "resources": ["pods"],
     "verbs": ["create", "list", "get", "patch", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
]

# A worker pod template as the chart's files/pod-template-file.kubernetes-helm-yaml renders it,
# cut to what an executor pod needs here (no volumes: no ConfigMaps exist under envtest).
POD_TEMPLATE = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "placeholder-name",
                 "labels": {"tier": "airflow", "component": "worker", "release": RELEASE}},
    "spec": {
        "containers": [{
            "name": "base", "imagePullPolicy": "IfNotPresent",
            "args": [], "image": "apache/airflow:placeholder",
            "env": [{"name": "AIRFLOW__CORE__EXECUTOR", "value": "LocalExecutor"}],
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                          "limits": {"memory": "1Gi"}},
        }],
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": 50000, "fsGroup": 0},
        "serviceAccountName": WORKER_SA,
    },
}


@dataclass(frozen=True)
class AirflowRun:
    """What one snippet did: its exit code and output."""

    version: str
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> AirflowRun:
        """self when the snippet exited 0; else an AssertionError showing its output."""
        if self.returncode != 0:
            raise AssertionError(
                f"Airflow {self.version} snippet exited {self.returncode}\n--- stdout\n"
                f"{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-6000:]}")
        return self

    def lines(self) -> list[dict]:
        """The JSON lines the snippet printed (its report of what it did)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


# --- identities ------------------------------------------------------------------------------


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def grant_pod_launcher(admin_api_client: Any, namespace: str, release: str = RELEASE) -> None:
    """The chart's pod-launcher Role and RoleBinding (scheduler + worker) in `namespace`, and
    its two ServiceAccounts (kept if they exist)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(admin_api_client)
    for account in (f"{release}-scheduler", f"{release}-worker"):
        try:
            core.create_namespaced_service_account(namespace, {"metadata": {"name": account}},
                                                   _preload_content=False)
        except ApiException as exc:
            if exc.status != 409:
                raise
    rbac = client.RbacAuthorizationV1Api(admin_api_client)
    role = f"{release}-pod-launcher-role"
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": role, "labels": {"tier": "airflow", "release": release}},
        "rules": POD_LAUNCHER_RULES}, _preload_content=False)
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": f"{release}-pod-launcher-rolebinding",
                     "labels": {"tier": "airflow", "release": release}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": f"{release}-scheduler",
                      "namespace": namespace},
                     {"kind": "ServiceAccount", "name": f"{release}-worker",
                      "namespace": namespace}]}, _preload_content=False)


def service_account_kubeconfig(admin_kubeconfig: Path, admin_api_client: Any, namespace: str,
                               account: str, path: Path, seconds: int = 3600) -> Path:
    """A kubeconfig authenticating as ServiceAccount `account` with a TokenRequest token (what
    the kubelet would project into the pod), same server and CA as the admin's."""
    from kubernetes import client

    token = client.CoreV1Api(admin_api_client).create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": seconds}}).status.token
    config = yaml.safe_load(admin_kubeconfig.read_text())
    user = service_account_username(namespace, account)
    config["users"] = [{"name": user, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = user
    config["contexts"][0]["context"]["namespace"] = namespace
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# --- running Airflow -------------------------------------------------------------------------


class RealAirflow:
    """One Airflow version's venv (built on first use), with an AIRFLOW_HOME under `workdir`."""

    def __init__(self, version: str, workdir: Path) -> None:
        self.version = version
        self.python = airflow_venv(version)
        self.home = workdir / f"airflow-{version}"
        self.home.mkdir(parents=True, exist_ok=True)
        self.pod_template = self.home / "pod_template.yaml"
        self.runs = 0  # numbers each run's output files, kept for a failure's post-mortem
        template = copy.deepcopy(POD_TEMPLATE)
        template["spec"]["containers"][0]["image"] = f"apache/airflow:{version}"
        self.pod_template.write_text(yaml.safe_dump(template, sort_keys=False))

    def environment(self, kubeconfig: Path, namespace: str) -> dict[str, str]:
        """Airflow's configuration, as environment variables: KubernetesExecutor in `namespace`
        with the kubeconfig, a throw-away sqlite home, no examples."""
        keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "TZ")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update({
            "HOME": str(self.home),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": namespace,
            "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
            "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": str(kubeconfig),
            "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": str(self.pod_template),
            "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_REPOSITORY": "apache/airflow",
            "AIRFLOW__KUBERNETES_EXECUTOR__WORKER_CONTAINER_TAG": self.version,
            "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS": "True",
            "KUBECONFIG": str(kubeconfig),
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def run(self, snippet: str, *, kubeconfig: Path, namespace: str,
            args: dict | None = None, request_log: Path | None = None,
            env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT) -> AirflowRun:
        """Run `snippet` (python source) in this Airflow's interpreter as the identity in
        `kubeconfig`. `args` reach it as JSON in $SNIPPET_ARGS; with `request_log`, the recorder
        prelude first appends each pod write the kubernetes client sends there."""
        environment = self.environment(kubeconfig, namespace)
        environment["SNIPPET_ARGS"] = json.dumps(args or {})
        environment["PYTHONPATH"] = str(SNIPPETS)  # their shared helpers (kpo_task.py), no more
        if request_log is not None:
            environment["AIRFLOW_REQUEST_LOG"] = str(request_log)
            snippet = (SNIPPETS / "recorder.py").read_text() + "\n\n" + snippet
        environment.update(env or {})
        # Output to files, not pipes: the executor's watcher processes inherit them and would
        # hold a pipe open after the snippet ends. The snippet runs in its own process group,
        # killed once it exits, so nothing it started outlives it.
        self.runs += 1
        out = self.home / f"snippet-{self.runs}.stdout"
        err = self.home / f"snippet-{self.runs}.stderr"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen([str(self.python), "-c", snippet], env=environment,
                                       cwd=self.home, stdout=stdout, stderr=stderr,
                                       start_new_session=True)
            try:
                returncode = process.wait(timeout=timeout)
                timed_out = ""
            except subprocess.TimeoutExpired:
                returncode, timed_out = -1, f"\n(timed out after {timeout:.0f}s)"
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return AirflowRun(self.version, returncode, out.read_text(errors="replace"),
                          err.read_text(errors="replace") + timed_out)


def snippet(name: str) -> str:
    return (SNIPPETS / f"{name}.py").read_text()


# --- Airflow's writes to live pods -----------------------------------------------------------

EXECUTOR_TASKS = {
    step: {"dag_id": DAG_ID, "task_id": f"{step}_task", "run_id": RUN_ID,
           "pod_id": f"webhook-e2e-{step}-task",
           "ti_id": f"0190a5f0-0000-7000-8000-00000000000{i}"}
    for i, step in enumerate(("running", "done", "deleted"))
}
KPO_TASKS = {
    step: {"dag_id": DAG_ID, "task_id": f"kpo_{step}", "run_id": RUN_ID,
           "name": f"kpo-{step}", "on_finish_action": action}
    for step, action in (("kept", "keep_pod"), ("failed", "delete_pod"),
                         ("deleted", "delete_pod"), ("killed", "delete_pod"),
                         ("duplicate", "delete_pod"))
}
# A try killed from outside leaves its pod; the next try, with reattach_on_restart=False,
# creates another with the same labels, and find_pod then retires the older one.
KPO_TASKS["duplicate"].update(copies=2, reattach_on_restart=False)
EXECUTOR_STEPS = ("adopt", "executor_done", "delete", "revoke")
# The phase each pod reaches before Airflow's writes (set through pods/status, as the kubelet
# would; pods never run under envtest).
EXECUTOR_PHASES = {"running": "Running", "done": "Succeeded", "deleted": "Succeeded"}
KPO_PHASES = {"kept": "Succeeded", "failed": "Failed", "deleted": "Succeeded",
              "killed": "Running", "duplicate-1": "Running", "duplicate-2": "Running"}
# startTime tells find_pod which of two duplicate pods is the newer one.
START_TIMES = {"kpo/duplicate-2": "2026-01-01T01:00:00Z"}


@dataclass(frozen=True)
class CapturedWrites:
    """Every pod write one Airflow version sent, with who sent it and the pod names used."""

    version: str
    namespace: str
    requests: list[dict]
    pods: dict[str, str]  # "executor/running" -> pod name
    runs: list[AirflowRun]


def set_phase(admin_api_client: Any, namespace: str, name: str, phase: str,
              start_time: str = "2026-01-01T00:00:00Z") -> None:
    from kubernetes import client

    status: dict[str, Any] = {"phase": phase}
    if phase != "Pending":
        status["startTime"] = start_time
    client.CoreV1Api(admin_api_client).patch_namespaced_pod_status(
        name, namespace, {"status": status}, _preload_content=False)


@dataclass(frozen=True)
class Identities:
    """Kubeconfigs of the chart's scheduler and worker ServiceAccounts in one namespace."""

    namespace: str
    scheduler: Path
    worker: Path

    @classmethod
    def issue(cls, admin_kubeconfig: Path, admin_api_client: Any, namespace: str,
              workdir: Path) -> Identities:
        return cls(namespace, *(
            service_account_kubeconfig(admin_kubeconfig, admin_api_client, namespace, account,
                                       workdir / f"{account}.kubeconfig")
            for account in (SCHEDULER_SA, WORKER_SA)))


def launch_pods(airflow: RealAirflow, identities: Identities, executor_steps: Iterable[str],
                kpo_steps: Iterable[str], request_log: Path | None = None
                ) -> tuple[dict[str, str], list[AirflowRun]]:
    """Real Airflow creates the pods of these steps: the executor's as the scheduler of job
    PREVIOUS_JOB, the KubernetesPodOperator's as the worker. ({"executor/<step>": pod}, runs)"""
    pods: dict[str, str] = {}
    runs = []
    executor_tasks = [EXECUTOR_TASKS[step] for step in executor_steps]
    kpo_tasks = {step: KPO_TASKS[step] for step in kpo_steps}
    if executor_tasks:
        run = airflow.run(snippet("executor_launch"), kubeconfig=identities.scheduler,
                          namespace=identities.namespace, request_log=request_log,
                          args={"job_id": PREVIOUS_JOB, "tasks": executor_tasks}).check()
        runs.append(run)
        by_task = {line["task"]: line["pod"] for line in run.lines()}
        pods.update({f"executor/{step}": by_task[task["task_id"]]
                     for step, task in EXECUTOR_TASKS.items() if task["task_id"] in by_task})
    if kpo_tasks:
        run = airflow.run(snippet("kpo_launch"), kubeconfig=identities.worker,
                          namespace=identities.namespace, request_log=request_log,
                          args={"namespace": identities.namespace, "tasks": kpo_tasks}).check()
        runs.append(run)
        made: dict[str, list[str]] = {}
        for line in run.lines():
            made.setdefault(line["task"], []).append(line["pod"])
        for step, task in KPO_TASKS.items():
            names = made.get(task["task_id"], [])
            if len(names) == 1:
                pods[f"kpo/{step}"] = names[0]
            else:  # copies, oldest first
                pods.update({f"kpo/{step}-{i}": name for i, name in enumerate(names, start=1)})
    return pods, runs


def move_to_phases(admin_api_client: Any, namespace: str, pods: dict[str, str]) -> None:
    """Each pod to its phase in EXECUTOR_PHASES / KPO_PHASES, through pods/status."""
    phases = {**{f"executor/{k}": v for k, v in EXECUTOR_PHASES.items()},
              **{f"kpo/{k}": v for k, v in KPO_PHASES.items()}}
    for key, name in pods.items():
        set_phase(admin_api_client, namespace, name, phases[key],
                  START_TIMES.get(key, "2026-01-01T00:00:00Z"))


def finish_pods(airflow: RealAirflow, identities: Identities, pods: dict[str, str],
                executor_steps: Iterable[str], kpo_steps: Iterable[str], request_log: Path
                ) -> tuple[list[dict], list[AirflowRun]]:
    """Real Airflow's writes to the live pods: the executor of job NEW_JOB (steps adopt,
    executor_done, delete, revoke), as the scheduler; the KubernetesPodOperator's cleanup and
    on_kill (steps kept, failed, deleted, killed), as the worker. (writes in order, runs)"""
    namespace = identities.namespace
    executor_steps, kpo_steps = list(executor_steps), list(kpo_steps)
    executor_args = {"namespace": namespace, "job_id": NEW_JOB, "previous_job_id": PREVIOUS_JOB,
                     "tasks": EXECUTOR_TASKS, "steps": executor_steps,
                     "pods": {step: pods.get(f"executor/{step}") for step in EXECUTOR_TASKS}}
    kpo_args = {"namespace": namespace,
                "tasks": {step: KPO_TASKS[step] for step in kpo_steps}}
    requests: list[dict] = []
    runs = []
    for name, kubeconfig, account, args, wanted in (
            ("executor_writes", identities.scheduler, SCHEDULER_SA, executor_args,
             executor_steps),
            ("kpo_cleanup", identities.worker, WORKER_SA, kpo_args, kpo_steps)):
        if not wanted:
            continue
        if request_log.exists():
            request_log.unlink()
        run = airflow.run(snippet(name), kubeconfig=kubeconfig, namespace=namespace, args=args,
                          request_log=request_log).check()
        runs.append(run)
        user = service_account_username(namespace, account)
        for line in (request_log.read_text().splitlines() if request_log.exists() else []):
            entry = json.loads(line)
            entry.update(user=user, snippet=name)
            requests.append(entry)
    return requests, runs


def airflow_writes(airflow: RealAirflow, admin_kubeconfig: Path, admin_api_client: Any,
                   namespace: str, workdir: Path) -> CapturedWrites:
    """Launch pods with real Airflow, move them to their phases, then let Airflow adopt, finish,
    revoke, clean up and delete them; return the writes it sent, in order.

    The namespace must exist with the chart's pod-launcher RBAC (`grant_pod_launcher`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    identities = Identities.issue(admin_kubeconfig, admin_api_client, namespace, workdir)
    pods, launch_runs = launch_pods(airflow, identities, EXECUTOR_TASKS, KPO_TASKS,
                                    workdir / "launch.jsonl")
    move_to_phases(admin_api_client, namespace, pods)
    requests, runs = finish_pods(airflow, identities, pods, EXECUTOR_STEPS, KPO_TASKS,
                                 workdir / "writes.jsonl")
    return CapturedWrites(airflow.version, namespace, requests, pods, [*launch_runs, *runs])


# --- fixtures --------------------------------------------------------------------------------

VOLATILE_METADATA = ("uid", "resourceVersion", "creationTimestamp", "managedFields",
                     "generation")


def request_shape(entry: dict, namespace: str, pods: dict[str, str]) -> dict:
    """What must stay the same between two captures: method, path, query, Content-Type and body
    with the namespace and pod names replaced by placeholders."""
    names = {name: f"{{{key}}}" for key, name in pods.items()}

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            value = value.replace(f"/namespaces/{namespace}/", "/namespaces/{namespace}/")
            for name, placeholder in names.items():
                value = re.sub(rf"(?<=/pods/){re.escape(name)}\b", placeholder, value)
            return names.get(value, "{namespace}" if value == namespace else value)
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    return {"method": entry["method"], "path": swap(entry["path"]),
            "query": swap(entry.get("query") or []), "content_type": entry["content_type"],
            "body": swap(entry["body"]), "status": entry["status"],
            "user": entry["user"].replace(f":{namespace}:", ":{namespace}:"),
            "caller": entry.get("caller") or []}


def fixture_documents(captured: CapturedWrites) -> dict[str, dict]:
    """One fixture document per write, named <nn>-<method>-<who>-<pod>.json."""
    by_name = {name: key for key, name in captured.pods.items()}
    documents = {}
    for index, entry in enumerate(captured.requests, start=1):
        pod = entry["path"].rstrip("/").split("/pods/")[-1].split("/")[0]
        step = by_name.get(pod, "unknown").replace("/", "-")
        name = f"{index:02d}-{entry['method'].lower()}-{step}.json"
        documents[name] = {
            "airflow": captured.version,
            "provider": PROVIDERS[captured.version],
            "namespace": captured.namespace,
            "pod_step": by_name.get(pod),
            "shape": request_shape(entry, captured.namespace, captured.pods),
            "request": {k: entry[k] for k in ("method", "path", "query", "content_type",
                                              "body", "user")},
            "status": entry["status"],
            "old_object": entry.get("old_object"),
            "response": entry.get("response"),
        }
    return documents


def load_fixtures(version: str) -> dict[str, dict]:
    folder = FIXTURES / version
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def write_fixtures(captured: CapturedWrites, root: Path = FIXTURES) -> list[Path]:
    folder = root / captured.version
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    written = []
    for name, document in fixture_documents(captured).items():
        path = folder / name
        path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


def summary(documents: Iterable[dict]) -> list[str]:
    """One line per write: method, path template, Content-Type and body."""
    return [f"{d['shape']['method']} {d['shape']['path']} [{d['shape']['content_type']}] "
            f"{json.dumps(d['shape']['body'], sort_keys=True)}" for d in documents]
