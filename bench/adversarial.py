"""Adversarial load through a real kube-apiserver (issue 21): `python -m bench adversarial`.

With envtest's binaries (KUBEBUILDER_ASSETS, else ../shared/k8s/bin beside the repo) it starts
etcd, kube-apiserver and the real webhook (2 workers) as the e2e suite does, then measures a
stream of legitimate executor pods (the Airflow 3 executor fixture, created as the scheduler's
ServiceAccount) twice:

- *quiet*: the stream alone;
- *under attack*: the same stream while `--hostile` creators (default 6) each create, again
  and again, the stock KPO pod carrying 60,000 tolerations plus a 2,000-toleration override
  annotation, and `--direct` clients (default 3) POST 3 MiB reviews (250,000 tolerations)
  straight to the webhook's /validate.

With `--mtls` the webhook serves with `--client-ca` and kube-apiserver presents its client
certificate (an AdmissionConfiguration naming a kubeconfig), so the direct POSTs are refused
before their bodies are read.

With `--apf both` (the default) there are two attack phases: one as above, then one with the
API Priority and Fairness objects the chart and deploy/base ship for the task accounts
(webhook/cluster/flowcontrol.py: the hostile creators' `airflow-worker` gets a priority
level of 3 seats, no borrowing, queues); `--apf off` or `on` runs only one of them. The
bench checks that kube-apiserver classified the hostile creates with that FlowSchema (the
X-Kubernetes-PF-FlowSchema-UID response header) and prints how many it did.

It prints: refusals of the legitimate stream and its p50/p99 per phase (and the ratio of
each attack phase's p99 to the quiet one; goal: 0 refusals, p99 within 2x; the last lines,
`RATIO ...`, repeat them), CPU per component and phase (kube-apiserver, etcd, the webhook,
this process's legitimate clients, the attackers' process, and the whole machine, shared
with whatever else runs), APF queue wait per priority level, how fast and by whom the
hostile pods were refused (goal: by the webhook within 1 s), what the direct POSTs got, and
each worker's peak RSS (VmHWM and the highest sampled VmRSS) against its share of the
manifests' memory limit. Figures only, no assertion; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import load_average, percentile
from bench.servers import CLOCK_TICKS, process_cpu_seconds
from tests.e2e.envtest import admin_ssl_context
from tests.e2e.harness import E2EEnvironment, LocalWebhook, e2e_pod
from tests.e2e.scenarios import scheduler_username
from tests.support.pods import airflow_pod
from webhook.cluster.certs import ADMISSION_KUBECONFIG, write_apiserver_client
from webhook.cluster.flowcontrol import DEFAULT_NAME, NAME_SUFFIX, flow_control_objects
from webhook.cluster.registration import MUTATING_WEBHOOK, VALIDATING_WEBHOOK

OVERRIDE = "airflow-pod-webhook.io/pod-override"
ROOT = Path(__file__).resolve().parents[1]
# The manifests' container limit (deploy/base/deployment.yaml) and the worker count it serves.
CONTAINER_LIMIT_MIB = 640
WORKERS = 2
FLOW_SCHEMA_HEADER = "X-Kubernetes-PF-FlowSchema-UID"


@dataclass
class Stream:
    latencies: list[float] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per second of phase
    # APF queue wait during the phase per priority level: (mean seconds, requests)
    waits: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class Hostile:
    latencies: list[float] = field(default_factory=list)
    by_webhook: int = 0
    busy: int = 0  # of those, refused as busy with other large reviews
    other: list[str] = field(default_factory=list)
    flow_schemas: dict[str, int] = field(default_factory=dict)  # APF's FlowSchema UID: count


def hostile_pod(namespace: str) -> dict:
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["namespace"] = namespace
    pod["metadata"].pop("generateName", None)
    pod["spec"]["tolerations"] = [{"key": f"k{i}", "operator": "Exists"} for i in range(60_000)]
    pod["metadata"].setdefault("annotations", {})[OVERRIDE] = json.dumps(
        {"spec": {"tolerations": [{"key": f"o{i}"} for i in range(2000)]}},
        separators=(",", ":"))
    return pod


def direct_review() -> bytes:
    """A 3 MiB review POSTed straight to the webhook: 250,000 tolerations."""
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["tolerations"] = [{"key": "a"}] * 250_000
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "direct", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE", "namespace": "default", "object": pod,
        "userInfo": {"username": "system:serviceaccount:default:default"}}}
    return json.dumps(review, separators=(",", ":")).encode()


class ApiClient:
    """Raw HTTPS to kube-apiserver as the admin, impersonating `user` (the pod bodies are
    serialised once, not by a client library per call)."""

    def __init__(self, server: str, context: ssl.SSLContext, user: str) -> None:
        host, port = server.removeprefix("https://").split(":")
        self.connection = http.client.HTTPSConnection(host, int(port), context=context,
                                                      timeout=60)
        self.user = user

    def create(self, namespace: str, body: bytes, query: str = "") -> tuple[int, dict]:
        status, answer, _ = self.create_classified(namespace, body, query)
        return status, answer

    def create_classified(self, namespace: str, body: bytes, query: str = ""
                          ) -> tuple[int, dict, str]:
        """The status, the answer and the UID of the FlowSchema kube-apiserver's API
        Priority and Fairness classified the request with (a response header)."""
        self.connection.request("POST", f"/api/v1/namespaces/{namespace}/pods{query}",
                                body=body, headers={"Content-Type": "application/json",
                                                    "Impersonate-User": self.user})
        response = self.connection.getresponse()
        data = response.read()
        flow_schema = response.getheader(FLOW_SCHEMA_HEADER, "")
        try:
            return response.status, json.loads(data), flow_schema
        except ValueError:
            return (response.status, {"message": data[:200].decode(errors="replace")},
                    flow_schema)


def legit_stream(env: E2EEnvironment, context: ssl.SSLContext, namespace: str,
                 stop: threading.Event, out: Stream, interval: float) -> None:
    client = ApiClient(env.control_plane.server, context, scheduler_username(namespace))
    while not stop.is_set():
        name = f"legit-{uuid.uuid4().hex[:10]}"
        pod = e2e_pod("executor-template-and-profile", namespace, name)
        out.names.add(pod["metadata"]["name"])
        started = time.perf_counter()
        try:
            status, answer = client.create(namespace, json.dumps(pod).encode())
        except (OSError, http.client.HTTPException) as exc:
            status, answer = 0, {"message": repr(exc)}
            client = ApiClient(env.control_plane.server, context, scheduler_username(namespace))
        out.latencies.append(time.perf_counter() - started)
        if status != 201:
            out.refusals.append(f"{status}: {str(answer.get('message'))[:200]}")
        stop.wait(interval)


def worker_username(namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:airflow-worker"


def let_the_worker_create_pods(env: E2EEnvironment, namespace: str) -> None:
    """The attacker holds a task's token: the Airflow worker's ServiceAccount, which may
    create pods (KubernetesPodOperator) in its own team's namespace."""
    from kubernetes import client

    client.RbacAuthorizationV1Api(env.api_client()).create_namespaced_role_binding(namespace, {
        "metadata": {"name": "airflow-worker-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "airflow-scheduler-pods"},
        "subjects": [{"kind": "ServiceAccount", "name": "airflow-worker",
                      "namespace": namespace}]}, _preload_content=False)


def hostile_creator(env: E2EEnvironment, context: ssl.SSLContext, namespace: str,
                    stop: threading.Event, out: Hostile, lock: threading.Lock) -> None:
    client = ApiClient(env.control_plane.server, context, worker_username(namespace))
    pod = hostile_pod(namespace)
    pod["metadata"]["name"] = "hostile-0000000000"
    template = json.dumps(pod, separators=(",", ":")).encode()
    while not stop.is_set():
        body = template.replace(b"hostile-0000000000",
                                f"hostile-{uuid.uuid4().hex[:10]}".encode(), 1)
        started = time.perf_counter()
        try:
            status, answer, flow_schema = client.create_classified(namespace, body)
        except (OSError, http.client.HTTPException) as exc:
            status, answer, flow_schema = 0, {"message": repr(exc)}, ""
            client = ApiClient(env.control_plane.server, context, worker_username(namespace))
        elapsed = time.perf_counter() - started
        message = str(answer.get("message", ""))
        with lock:
            out.latencies.append(elapsed)
            out.flow_schemas[flow_schema] = out.flow_schemas.get(flow_schema, 0) + 1
            if f'admission webhook "{MUTATING_WEBHOOK}" denied' in message:
                out.by_webhook += 1
                out.busy += "is busy with other reviews" in message
            else:
                out.other.append(f"{status}: {message[:160]}")


def direct_poster(url: str, ca: Path, body: bytes, stop: threading.Event,
                  statuses: dict[str, int], lock: threading.Lock) -> None:
    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(ca))
    connection = None
    while not stop.is_set():
        try:
            if connection is None:
                connection = http.client.HTTPSConnection(host, int(port), context=context,
                                                         timeout=30)
            connection.request("POST", "/validate?timeout=5s", body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read() or b"{}")
            reason = ((answer.get("response") or {}).get("status") or {}).get("reason", "")
            key = f"{response.status} {reason}".strip()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            key, connection = type(exc).__name__, None
        with lock:
            statuses[key] = statuses.get(key, 0) + 1


def rss_sampler(pids: Callable[[], list[int]], stop: threading.Event,
                peak: dict[int, int]) -> None:
    while not stop.is_set():
        for pid in pids():
            peak[pid] = max(peak.get(pid, 0), status_kib(pid, "VmRSS:"))
        stop.wait(0.05)


def status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_of(env: E2EEnvironment) -> dict[str, float]:
    """CPU seconds so far of kube-apiserver, etcd, the webhook (master and workers), this
    process (the legitimate creators' client side), and of the whole machine (every tenant:
    the host is shared)."""
    plane, webhook = env.control_plane, env.webhook
    assert plane is not None and plane.apiserver is not None and plane.etcd is not None
    assert webhook is not None and webhook.process is not None
    pids = [webhook.process.pid, *webhook.server.worker_pids()]
    return {"kube-apiserver": process_cpu_seconds(plane.apiserver.popen.pid),
            "etcd": process_cpu_seconds(plane.etcd.popen.pid),
            "webhook": sum(process_cpu_seconds(pid) for pid in pids),
            "legitimate client": process_cpu_seconds(os.getpid()),
            "attackers": 0.0,
            "whole machine": machine_busy_seconds()}


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (not idle or waiting for I/O) since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    return (sum(values[:8]) - values[3] - values[4]) / CLOCK_TICKS


VALIDATE_CALLS = "validate-calls"  # key of flow_control_waits(): the /validate hook's calls


def flow_control_waits(env: E2EEnvironment, context: ssl.SSLContext
                       ) -> dict[str, tuple[float, float]]:
    """kube-apiserver's API Priority and Fairness queue wait so far per priority level of
    executed requests: {level: (seconds, requests)}; and under VALIDATE_CALLS, the time it
    waited for the validating hook's answers (only legitimate pods reach that hook: the
    hostile ones are refused by the mutating hook), from its own admission metrics."""
    assert env.control_plane is not None
    host, port = env.control_plane.server.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    waits: dict[str, list[float]] = {}
    for line in text.splitlines():
        if line.startswith("apiserver_admission_webhook_admission_duration_seconds_") and (
                f'name="{VALIDATING_WEBHOOK}"' in line):
            name, _, value = line.rpartition(" ")
            metric = name.split("{")[0]
            if metric.endswith(("_sum", "_count")):
                slot = waits.setdefault(VALIDATE_CALLS, [0.0, 0.0])
                slot[0 if metric.endswith("_sum") else 1] += float(value)
            continue
        if not line.startswith("apiserver_flowcontrol_request_wait_duration_seconds_"):
            continue
        name, _, value = line.rpartition(" ")
        if 'execute="true"' not in name or not name.split("{")[0].endswith(("_sum", "_count")):
            continue
        level = name.split('priority_level="', 1)[1].split('"', 1)[0]
        slot = waits.setdefault(level, [0.0, 0.0])
        slot[0 if name.split("{")[0].endswith("_sum") else 1] += float(value)
    return {level: (total, count) for level, (total, count) in waits.items()}


def run_stream(env: E2EEnvironment, context: ssl.SSLContext, namespace: str, seconds: float,
               streams: int, interval: float, attack: Callable[[threading.Event], list]
               ) -> Stream:
    out, stop = Stream(), threading.Event()
    waits_before = flow_control_waits(env, context)
    cpu_before = cpu_of(env)
    threads = [threading.Thread(target=legit_stream,
                                args=(env, context, namespace, stop, out, interval))
               for _ in range(streams)]
    threads += attack(stop)
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(120)
    cpu_after = cpu_of(env)
    out.cpu = {name: (cpu_after[name] - cpu_before[name]) / seconds for name in cpu_before}
    for level, (total, count) in flow_control_waits(env, context).items():
        total_before, count_before = waits_before.get(level, (0.0, 0.0))
        if count > count_before:
            out.waits[level] = ((total - total_before) / (count - count_before),
                                count - count_before)
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def apply_priority_and_fairness(env: E2EEnvironment, context: ssl.SSLContext,
                                namespaces: list[str]) -> str:
    """Create the FlowSchema and PriorityLevelConfiguration the chart and the kustomize base
    ship (webhook/cluster/flowcontrol.py) for an official-chart release `airflow` in each
    namespace, and wait until kube-apiserver classifies the worker's pod creates with them.
    Returns the FlowSchema's UID."""
    from kubernetes import client

    api = client.FlowcontrolApiserverV1Api(env.api_client())
    releases = [{"release": "airflow", "namespace": name} for name in namespaces]
    level, schema = flow_control_objects(releases)
    api.create_priority_level_configuration(level, _preload_content=False)
    uid = json.loads(api.create_flow_schema(schema, _preload_content=False).data)[
        "metadata"]["uid"]
    probe = ApiClient(env.control_plane.server, context, worker_username(namespaces[0]))
    pod = json.dumps(e2e_pod("executor-template-and-profile", namespaces[0], "apf-probe"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, _, flow_schema = probe.create_classified(namespaces[0], pod.encode(), "?dryRun=All")
        if flow_schema == uid:
            return uid
        time.sleep(0.5)
    raise RuntimeError("kube-apiserver did not classify the worker's pod creates with "
                       f"FlowSchema {schema['metadata']['name']} within 60 s")


@dataclass
class Attack:
    """One phase under attack: the legitimate stream, what the hostile creators and direct
    posters got, and the load average at its end."""
    apf: bool
    stream: Stream
    hostile: Hostile
    statuses: dict[str, int]
    load: str
    flow_schema_uid: str = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench adversarial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="per phase")
    parser.add_argument("--streams", type=int, default=2, help="legitimate creators")
    parser.add_argument("--interval", type=float, default=0.1,
                        help="pause between one legitimate creator's pods")
    parser.add_argument("--hostile", type=int, default=6, help="hostile creators")
    parser.add_argument("--direct", type=int, default=3, help="direct 3 MiB posters")
    parser.add_argument("--mtls", action="store_true",
                        help="serve --client-ca, kube-apiserver presenting its client cert "
                             "(the direct posters have none)")
    parser.add_argument("--attacker-nice", type=int, default=0,
                        help="niceness added to the attackers' process: on a cluster they run "
                             "on nodes, not on the control plane's CPUs; here they share the "
                             "machine (19: they get what the rest leaves)")
    parser.add_argument("--apf", choices=("off", "on", "both"), default="both",
                        help="API Priority and Fairness objects of the chart/kustomize base "
                             "for the Airflow task accounts: an attack phase without them "
                             "(off), with them (on), or one of each, in that order (both)")
    args = parser.parse_args(argv)
    assets = os.environ.get("KUBEBUILDER_ASSETS") or str(ROOT.parent / "shared" / "k8s" / "bin")
    if not Path(assets, "kube-apiserver").exists():
        print(f"no kube-apiserver in {assets}: set KUBEBUILDER_ASSETS", file=sys.stderr)
        return 2
    os.environ["KUBEBUILDER_ASSETS"] = assets
    workdir = Path(tempfile.mkdtemp(prefix="bench-adversarial-"))

    def mutual_tls(webhook: LocalWebhook) -> tuple[list[str], list[str]]:
        folder = workdir / "apiserver-client"
        client = write_apiserver_client(folder, [f"127.0.0.1:{webhook.port}"],
                                        str(folder / ADMISSION_KUBECONFIG))
        return ([f"--admission-control-config-file={client.admission_configuration}"],
                ["--client-ca", str(client.client_ca)])

    env = E2EEnvironment("envtest", workdir, configure=mutual_tls if args.mtls else None)
    try:
        env.start()
        assert env.control_plane is not None and env.control_plane.certs is not None
        assert env.webhook is not None
        context = admin_ssl_context(env.control_plane.certs, workdir)
        namespace = f"bench-adv-{uuid.uuid4().hex[:6]}"
        hostile_namespace = f"bench-hostile-{uuid.uuid4().hex[:6]}"
        for name in (namespace, hostile_namespace):
            env.create_namespace(name)
            env.wait_until_effective(name)
        let_the_worker_create_pods(env, hostile_namespace)
        server = env.webhook.server
        workers = lambda: sorted(server.worker_pids())  # noqa: E731
        peak: dict[int, int] = {}
        sampler_stop = threading.Event()
        sampler = threading.Thread(target=rss_sampler, args=(workers, sampler_stop, peak))
        sampler.start()
        before = {pid: status_kib(pid, "VmRSS:") for pid in workers()}
        load_quiet = load_average()
        quiet = run_stream(env, context, namespace, args.seconds, args.streams, args.interval,
                           lambda stop: [])
        body = direct_review()
        attacks: list[Attack] = []
        for apf in {"off": [False], "on": [True], "both": [False, True]}[args.apf]:
            uid = (apply_priority_and_fairness(env, context, [hostile_namespace, namespace])
                   if apf else "")
            stream, hostile, statuses = attack_phase(env, context, namespace,
                                                     hostile_namespace, body, args)
            attacks.append(Attack(apf, stream, hostile, statuses, load_average(), uid))
        sampler_stop.set()
        sampler.join()
        hwm = {pid: status_kib(pid, "VmHWM:") for pid in workers()}
        master = status_kib(server.process.pid, "VmRSS:")
        lines = server.decision_lines()
        webhook_ms = [line["duration_ms"] for line in lines
                      if line["pod"].startswith("hostile-") and line["hook"] == "mutate"]
        phases = [("quiet", quiet)] + [(phase_name(a), a.stream) for a in attacks]
        for name, stream in phases:
            own = sorted(line["duration_ms"] for line in lines if line["pod"] in stream.names)
            print(f"webhook's own time for the legitimate pods, {name}: p50 "
                  f"{percentile(own, .5):.1f} ms, p99 {percentile(own, .99):.1f} ms, "
                  f"max {max(own, default=float('nan')):.1f} ms ({len(own)} reviews)")
        print_report(args, quiet, attacks, len(body), before, peak, hwm, master, webhook_ms,
                     load_quiet)
        return 0
    finally:
        env.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def phase_name(attack: Attack) -> str:
    return "under attack, APF" if attack.apf else "under attack"


def attack_phase(env: E2EEnvironment, context: ssl.SSLContext, namespace: str,
                 hostile_namespace: str, body: bytes, args: argparse.Namespace
                 ) -> tuple[Stream, Hostile, dict[str, int]]:
    """The legitimate stream while the attackers run in a process of their own."""
    assert env.webhook is not None
    results: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    url, ca = env.webhook.url, env.webhook.cert_dir / "ca.crt"

    def attacker(stop: threading.Event) -> None:
        """In its own process: the attackers' CPU (serialising 2.5 MiB pods, TLS) must not
        slow the measuring process's threads through its GIL."""
        os.nice(args.attacker_nice)
        hostile, statuses, lock, inner = Hostile(), {}, threading.Lock(), threading.Event()
        threads = ([threading.Thread(target=hostile_creator,
                                     args=(env, context, hostile_namespace, inner, hostile,
                                           lock))
                    for _ in range(args.hostile)]
                   + [threading.Thread(target=direct_poster,
                                       args=(url, ca, body, inner, statuses, lock))
                      for _ in range(args.direct)])
        for thread in threads:
            thread.start()
        stop.wait()
        inner.set()
        for thread in threads:
            thread.join(120)
        results.put((hostile, statuses, time.process_time()))

    def attack(stop: threading.Event) -> list[threading.Thread]:
        mp_stop = multiprocessing.get_context("fork").Event()
        process = multiprocessing.get_context("fork").Process(target=attacker,
                                                              args=(mp_stop,))

        def run() -> None:
            process.start()
            stop.wait()
            mp_stop.set()
            process.join(180)

        return [threading.Thread(target=run)]

    stream = run_stream(env, context, namespace, args.seconds, args.streams, args.interval,
                        attack)
    hostile, statuses, attackers_cpu = results.get(timeout=180)
    stream.cpu["attackers"] = attackers_cpu / args.seconds
    return stream, hostile, statuses


def print_report(args: argparse.Namespace, quiet: Stream, attacks: list[Attack],
                 body_bytes: int, before: dict[int, int], peak: dict[int, int],
                 hwm: dict[int, int], master_kib: int, webhook_ms: list[float],
                 load_quiet: str) -> None:
    def p(values: list[float], q: float) -> float:
        return percentile(sorted(values), q)

    share = (CONTAINER_LIMIT_MIB * 1024 - master_kib) / WORKERS
    print("\n## Adversarial load through kube-apiserver (issue 21)\n")
    loads = "; ".join(f"{phase_name(a)} {a.load}" for a in attacks)
    print(f"Mutual TLS: {'on (serve --client-ca)' if args.mtls else 'off'}. "
          f"Load average (1, 5, 15 min) at the end of each phase: quiet {load_quiet}; "
          f"{loads}. {args.seconds:.0f} s per phase, {args.streams} legitimate creators "
          f"({args.interval * 1000:.0f} ms pause each), {args.hostile} hostile creators, "
          f"{args.direct} direct posters of {body_bytes / 2**20:.2f} MiB (their process "
          f"niced +{args.attacker_nice}). APF: the "
          "FlowSchema and PriorityLevelConfiguration of the chart and deploy/base for the "
          "task accounts (webhook/cluster/flowcontrol.py).\n")
    phases = [("quiet", quiet)] + [(phase_name(a), a.stream) for a in attacks]
    print("| legitimate executor pods | creates | refused | p50 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for name, stream in phases:
        lat = stream.latencies
        print(f"| {name} | {len(lat)} | {len(stream.refusals)} | {ms(p(lat, .5))} | "
              f"{ms(p(lat, .99))} | {ms(max(lat))} |")
    print("\n| CPU (cores busy) | " + " | ".join(quiet.cpu) + " |")
    print("|---|" + "---|" * len(quiet.cpu))
    for name, stream in phases:
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in stream.cpu.values()) + " |")
    levels = ("workload-low", f"{DEFAULT_NAME}{NAME_SUFFIX}")
    print("\n| APF queue wait, mean (requests) | " + " | ".join(levels) + " |")
    print("|---|" + "---|" * len(levels))
    for name, stream in phases:
        cells = [f"{stream.waits[level][0] * 1000:.1f} ms ({stream.waits[level][1]:.0f})"
                 if level in stream.waits else "-" for level in levels]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n| legitimate create, mean | round trip | kube-apiserver's wait for /validate "
          "(x2: /mutate too) | the rest: kube-apiserver's own work, its wait for a CPU, "
          "the client |")
    print("|---|---|---|---|")
    for name, stream in phases:
        mean = statistics.fmean(stream.latencies) if stream.latencies else float("nan")
        hook = stream.waits.get(VALIDATE_CALLS, (float("nan"), 0))[0]
        print(f"| {name} | {ms(mean)} | {ms(hook)} | {ms(mean - 2 * hook)} |")
    for attack in attacks:
        name, stream, hostile = phase_name(attack), attack.stream, attack.hostile
        ratio = p(stream.latencies, .99) / p(quiet.latencies, .99)
        print(f"\n### {name}\n\np99 {name} / quiet: {ratio:.2f}x (goal: at most 2x); "
              f"refusals: {len(stream.refusals)} (goal: 0)")
        for refusal in stream.refusals[:5]:
            print(f"  refused: {refusal}")
        lat = hostile.latencies
        classified = ""
        if attack.apf:
            ours = hostile.flow_schemas.get(attack.flow_schema_uid, 0)
            classified = (f"; classified by the task accounts' FlowSchema: {ours} of "
                          f"{len(lat)}")
        print(f"Hostile creates: {len(lat)}, refused by the webhook: {hostile.by_webhook} "
              f"({hostile.by_webhook - hostile.busy} naming the cap, {hostile.busy} as busy), "
              f"otherwise: {len(hostile.other)}; create round trip p50 {ms(p(lat, .5))}, "
              f"max {ms(max(lat)) if lat else '-'}{classified}")
        for other in hostile.other[:3]:
            print(f"  other: {other}")
        print(f"Direct {body_bytes / 2**20:.2f} MiB POSTs to /validate: "
              + ", ".join(f"{k}: {v}" for k, v in sorted(attack.statuses.items())))
    print(f"\nThe webhook's own time per hostile refusal (all attack phases): p50 "
          f"{p(webhook_ms, .5):.1f} ms, max {max(webhook_ms, default=float('nan')):.1f} ms "
          "(goal: refused by the webhook within 1 s)")
    print(f"\nWorker memory (limit {CONTAINER_LIMIT_MIB} MiB for the container; master "
          f"{master_kib / 1024:.0f} MiB; each worker's share {share / 1024:.0f} MiB):\n")
    print("| worker | RSS before | highest sampled RSS | VmHWM (peak) | under its share |")
    print("|---|---|---|---|---|")
    for pid in sorted(hwm):
        top = max(hwm[pid], peak.get(pid, 0))
        print(f"| {pid} | {before.get(pid, 0) / 1024:.0f} MiB | "
              f"{peak.get(pid, 0) / 1024:.0f} MiB | {hwm[pid] / 1024:.0f} MiB | "
              f"{'yes' if top < share else 'NO'} |")
    print(f"\nquiet p50/p99: {statistics.median(quiet.latencies) * 1000:.0f}/"
          f"{p(quiet.latencies, .99) * 1000:.0f} ms")
    for attack in attacks:
        ratio = p(attack.stream.latencies, .99) / p(quiet.latencies, .99)
        print(f"RATIO {phase_name(attack)}: p99 {ratio:.2f}x quiet, "
              f"{len(attack.stream.refusals)} refused")


if __name__ == "__main__":
    sys.exit(main())
