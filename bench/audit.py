"""`python -m bench audit` (or `python -m bench.audit`): how fast the adoption audit judges pods.

Prints figures, asserts nothing. Three measurements over N pods (default 10,000), a mix of the
six real Airflow fixture pods as the API server stores them, privileged variants (denied) and
foreign pods (skipped):
1. core: `audit_pod` alone, in-process;
2. file: the whole command (`run`) on one `kubectl get pods -o json`-style List file, JSON out;
3. cluster (with KUBEBUILDER_ASSETS): the N pods created in a real kube-apiserver, then
   `airflow-pod-webhook audit` in its own process lists them through a kubeconfig in pages of
   500 and judges them as they come; then once more in a single page, to show what paging
   saves in memory.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.paths import AIRFLOW_PODS, POLICIES
from tests.support.pods import airflow_pod
from tests.support.server_process import cli_command
from tests.support.stored_pods import as_stored, foreign
from webhook.audit.command import AuditOptions, run
from webhook.audit.judge import audit_pod
from webhook.policy.load import load_policy_dir


def pods(count: int, stored: bool = True) -> list[dict]:
    """`count` pods: per 8, the six fixtures, one privileged executor, one foreign pod."""
    fixtures = sorted(p.stem for p in AIRFLOW_PODS.glob("*.json"))
    out = []
    for i in range(count):
        kind = i % 8
        if kind < 6:
            pod = airflow_pod(fixtures[kind])
        elif kind == 6:
            pod = airflow_pod("airflow3-executor")
            pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
        else:
            pod = foreign()
        pod["metadata"]["name"] = f"pod-{i:06d}"
        pod["metadata"].pop("generateName", None)
        out.append(as_stored(pod) if stored else pod)
    return out


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def high_water_kib(pid: int) -> int:
    """VmHWM of a running process: its own peak RSS since exec. (ru_maxrss of a child would
    count the bench's own memory, copied by fork before the exec.)"""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def core(policies, batch: list[dict]) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    for pod in batch:
        audit_pod(pod, policies)
    return time.perf_counter() - start, time.process_time() - cpu


def file_run(policies, batch: list[dict]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pods.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": batch}))
        start, cpu = time.perf_counter(), time.process_time()
        run(policies, AuditOptions(files=(str(path),), output="json"), io.StringIO(),
            io.StringIO())
        return time.perf_counter() - start, time.process_time() - cpu


def cluster_run(policies, batch: list[dict], assets: str
                ) -> tuple[list[tuple[int, float, float, float]], float]:
    from kubernetes import client, config

    from tests.e2e.envtest import EnvtestControlPlane

    with tempfile.TemporaryDirectory() as tmp:
        plane = EnvtestControlPlane(Path(assets), Path(tmp))
        plane.start()
        try:
            configuration = client.Configuration()
            config.load_kube_config(str(plane.kubeconfig_path),
                                    client_configuration=configuration)
            configuration.connection_pool_maxsize = 8
            core_api = client.CoreV1Api(client.ApiClient(configuration))
            core_api.create_namespace({"metadata": {"name": "bench"}}, _preload_content=False)
            clean = [{k: v for k, v in p.items() if k != "status"} for p in batch]
            for pod in clean:
                meta = pod["metadata"]
                pod["metadata"] = {k: meta[k] for k in ("name", "labels", "annotations")
                                   if k in meta} | {"namespace": "bench"}
                pod["spec"] = {k: v for k, v in pod["spec"].items()
                               if k not in ("nodeName", "priority")}
            start = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda p: core_api.create_namespaced_pod(
                    "bench", p, _preload_content=False), clean))
            created = time.perf_counter() - start
            # The command as a user runs it, in its own process: its CPU time and peak RSS are
            # its own. Pages of 500 first, then the whole list in one response, for contrast.
            runs = []
            for chunk in (500, len(batch)):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                process = subprocess.Popen(
                    [*cli_command(), "audit", "--policies", str(POLICIES), "--kubeconfig",
                     str(plane.kubeconfig_path), "-n", "bench", "-o", "json",
                     "--chunk-size", str(chunk)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                peak = 0
                while process.poll() is None:
                    peak = max(peak, high_water_kib(process.pid))
                    time.sleep(0.05)
                stderr = process.communicate()[1]
                wall = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                assert process.returncode == 1, stderr  # the privileged pods are denied
                cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                runs.append((chunk, wall, cpu, peak / 1024))
            return runs, created
        finally:
            plane.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench audit", description=__doc__)
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--no-cluster", action="store_true",
                        help="skip the kube-apiserver measurement")
    args = parser.parse_args(argv)
    policies = load_policy_dir(POLICIES).policy_set
    batch = pods(args.pods)
    n = len(batch)
    print(f"adoption audit, {n} pods (bundled policies; 6/8 Airflow fixtures, 1/8 privileged, "
          f"1/8 foreign), Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"load average before: {os.getloadavg()[0]:.1f} (wall time suffers on a busy host; "
          "CPU time is this process only)")
    print(f"{'measurement':<46}{'wall s':>7}{'pods/s':>8}{'CPU s':>7}{'pods/CPU-s':>11}")

    def line(label: str, wall: float, cpu: float) -> None:
        print(f"{label:<46}{wall:>7.2f}{n / wall:>8,.0f}{cpu:>7.2f}{n / cpu:>11,.0f}")

    line("core: audit_pod per pod", *core(policies, batch))
    line("file: audit pods.json -o json (whole command)", *file_run(policies, batch))
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and not args.no_cluster:
        runs, created = cluster_run(policies, batch, assets)
        for chunk, wall, cpu, rss in runs:
            line(f"cluster: audit -n bench --chunk-size {chunk}", wall, cpu)
            print(f"  peak RSS of the audit process: {rss:.0f} MiB")
        print(f"  (creating the {n} pods in kube-apiserver took {created:.1f} s; the API "
              "server and etcd share the host)")
    else:
        print("cluster: skipped (set KUBEBUILDER_ASSETS to ../shared/k8s/bin)")
    print(f"peak RSS of this process: {rss_mib():.0f} MiB (includes the {n} pods the bench "
          "builds in memory)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
