"""Pod creates through a real kube-apiserver (issue 14): what a cluster feels, per admission path.

With envtest's binaries (`KUBEBUILDER_ASSETS`, else `../shared/k8s/bin` beside the repo) it
starts etcd and kube-apiserver with the e2e suite's starter (tests/e2e/envtest.py), one
namespace per path, and registers by URL:

- *no webhook*: nothing; kube-apiserver's own built-in plugins only;
- *trivial webhook*: bench.variant's ceiling app (Flask + gunicorn + TLS, parse and allow) on
  both hooks, registered exactly as `manifests` renders ours: the transport floor;
- *trivial webhook, our answers*: the same app, each hook giving the very answer ours gives
  this pod (patch, warnings, audit annotations): what our answers cost kube-apiserver, with
  none of our work (ours minus this is our server's own cost; this minus trivial is what
  kube-apiserver spends on applying the patch and the rest of our answers);
- *webhook, two hooks*: the real server's /mutate and /validate, as `manifests` renders them;
- *webhook, single call*: the same server's /mutate-validate (`manifests --single-call`);
- *built-in CEL pair*: a MutatingAdmissionPolicy (JSONPatch: the same six changes our policies
  make to this pod) and a ValidatingAdmissionPolicy (privileged, escalation, capabilities,
  host namespaces, runAsNonRoot, seccomp), when the API server serves them.

Each registration keeps the rendered selectors and adds one namespaceSelector term naming its
namespace. The pod is the Airflow 3 executor fixture, created as the scheduler's
ServiceAccount (impersonated, as e2e does). Paths take turns: sequential creates in rounds
of a few pods per path, order rotating; then 8 concurrent creators, a short closed-loop phase
per path per round. Figures are ratios within one run, so the host's drift cancels out.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.load import Phase, Target, open_connection, round_trip, run_phase
from bench.report import load_average, percentile, table
from bench.reviews import FIXTURE_PODS, Request
from bench.servers import ROOT, Server, ServerSpec, process_cpu_seconds, running
from tests.e2e.scenarios import scheduler_username

NONE, TRIVIAL, REPLAY, TWO_HOOKS, SINGLE, CEL = (
    "no webhook", "trivial webhook", "trivial webhook, our answers", "webhook, two hooks",
    "webhook, single call", "built-in CEL pair")
SLUG = {NONE: "none", TRIVIAL: "trivial", REPLAY: "replay", TWO_HOOKS: "two",
        SINGLE: "single", CEL: "cel"}
APPLIED = "airflow-pod-webhook.io/applied"
CEL_MARK = "bench.airflow-pod-webhook.io/cel"
POD_FIXTURE = FIXTURE_PODS / "airflow3-executor.json"
EFFECTIVE_TIMEOUT = 90.0
TARGET_P50, TARGET_CREATES, TARGET_SINGLE_VS_CEL = 1.1, 0.9, 1.0


@dataclass(frozen=True)
class ApiServerSettings:
    sequential_creates: int = 300  # per path, one path after the other
    concurrent_rounds: int = 8
    concurrent_seconds: float = 1.0
    processes: int = 2
    connections: int = 4  # per process: 8 concurrent creators
    warmup: int = 30
    workers: int | None = None
    threads: int | None = None
    log_level: str = "info"

    @property
    def served_workers(self) -> int:
        from webhook.serving.server import ServeOptions

        return self.workers or ServeOptions.workers

    @property
    def served_threads(self) -> int:
        from webhook.serving.server import ServeOptions

        return self.threads or ServeOptions.threads

    @classmethod
    def quick(cls) -> ApiServerSettings:
        return cls(sequential_creates=6, concurrent_rounds=1, concurrent_seconds=0.3,
                   warmup=3)


@dataclass
class PathFigures:
    name: str
    sequential: list[float] = field(default_factory=list)  # seconds per create
    throughput: list[float] = field(default_factory=list)  # creates/s per round
    apiserver_cpu: float = 0.0  # seconds, during the concurrent phases
    webhook_cpu: float = 0.0
    creates: int = 0  # in the concurrent phases
    errors: int = 0
    error_text: str = ""

    @property
    def p50(self) -> float:
        return percentile(sorted(self.sequential), 0.50)

    @property
    def p99(self) -> float:
        return percentile(sorted(self.sequential), 0.99)


# --- the API server's binaries -------------------------------------------------------------


def find_assets() -> tuple[Path | None, Path | None, str]:
    """(folder with runnable kube-apiserver and etcd, a temporary copy to remove, why not).

    `KUBEBUILDER_ASSETS`, else `../shared/k8s/bin`, as `make test` chooses them
    (tools/with_envtest_assets.py): a copy without the run bit (read-only media, an archive)
    is copied into a temporary folder and made executable there, never changed in place.
    """
    from tools.with_envtest_assets import BINARIES, SHARED_ASSETS, executable_copy, runnable

    configured = os.environ.get("KUBEBUILDER_ASSETS")
    folder = Path(configured) if configured else (ROOT / SHARED_ASSETS).resolve()
    absent = [name for name in BINARIES if not (folder / name).is_file()]
    if absent:
        source = "KUBEBUILDER_ASSETS" if configured else str(SHARED_ASSETS)
        return None, None, f"{source} ({folder}) has no {' or '.join(absent)}"
    if runnable(folder):
        return folder, None, ""
    copy = executable_copy(folder)
    return copy, copy, ""


# --- objects to register -------------------------------------------------------------------


def only_namespace(hook: dict, namespace: str) -> dict:
    """`hook` as rendered, plus a namespaceSelector term that admits `namespace` alone."""
    selector = hook.setdefault("namespaceSelector", {})
    selector.setdefault("matchExpressions", []).append(
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]})
    return hook


def webhook_objects(name: str, ca: bytes, url: str, namespace: str,
                    single_call: bool = False, airflow_usernames: tuple[str, ...] = ()
                    ) -> list[dict]:
    """Our registration exactly as `manifests` renders it (with the served policy folder's
    Airflow accounts: the create hooks select by label or by writer), renamed and scoped to
    `namespace`."""
    from webhook.cluster.registration import webhook_configurations

    objects = webhook_configurations(ca, url=url, single_call=single_call,
                                     airflow_usernames=airflow_usernames)
    for obj in objects:
        obj["metadata"]["name"] = f"bench-{name}"
        for hook in obj["webhooks"]:
            only_namespace(hook, namespace)
    return objects


def cel_objects(namespace: str) -> list[dict]:
    """The built-in pair: what our mutation does to the fixture pod, and a restricted check.

    The mutation is a JSONPatch (this API server build cannot apply ApplyConfiguration ones);
    both match pods by the same CEL condition as our webhooks.
    """
    from webhook.cluster.registration import NOT_MIRROR_POD, pod_match_expression

    api = "admissionregistration.k8s.io/v1"
    rules = {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                "operations": ["CREATE"], "resources": ["pods"]}]}
    conditions = [{"name": "airflow-pod", "expression": pod_match_expression()},
                  {"name": "not-mirror-pod", "expression": NOT_MIRROR_POD}]
    mark = CEL_MARK.replace("/", "~1")
    patch = """[
      JSONPatch{op: "add", path: "/metadata/annotations/MARK", value: "applied"},
      JSONPatch{op: "add", path: "/spec/containers/0/resources/requests",
                value: {"memory": "4Gi"}},
      JSONPatch{op: "add", path: "/spec/containers/0/resources/limits", value: {"memory": "4Gi"}},
      JSONPatch{op: "add", path: "/spec/containers/0/securityContext",
                value: Object.spec.containers.securityContext{allowPrivilegeEscalation: false,
                  capabilities: Object.spec.containers.securityContext.capabilities{
                    drop: ["ALL"]}}},
      JSONPatch{op: "add", path: "/spec/securityContext/seccompProfile",
                value: Object.spec.securityContext.seccompProfile{type: "RuntimeDefault"}},
      JSONPatch{op: "add", path: "/spec/securityContext/runAsNonRoot", value: true}
    ]""".replace("MARK", mark)
    containers = "object.spec.containers"
    validations = [
        (f"{containers}.all(c, !has(c.securityContext) || !has(c.securityContext.privileged)"
         " || c.securityContext.privileged == false)", "privileged containers are not allowed"),
        (f"{containers}.all(c, has(c.securityContext) && "
         "has(c.securityContext.allowPrivilegeEscalation) && "
         "c.securityContext.allowPrivilegeEscalation == false)",
         "allowPrivilegeEscalation must be false"),
        (f"{containers}.all(c, has(c.securityContext) && has(c.securityContext.capabilities) && "
         "has(c.securityContext.capabilities.drop) && "
         "'ALL' in c.securityContext.capabilities.drop)", "capabilities must drop ALL"),
        ("!has(object.spec.hostNetwork) || !object.spec.hostNetwork", "no hostNetwork"),
        ("!has(object.spec.hostPID) || !object.spec.hostPID", "no hostPID"),
        ("!has(object.spec.hostIPC) || !object.spec.hostIPC", "no hostIPC"),
        ("has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) && "
         "object.spec.securityContext.runAsNonRoot == true", "runAsNonRoot must be true"),
        ("has(object.spec.securityContext) && has(object.spec.securityContext.seccompProfile) && "
         "object.spec.securityContext.seccompProfile.type in ['RuntimeDefault', 'Localhost']",
         "seccompProfile must be RuntimeDefault or Localhost"),
    ]
    scope = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    return [
        {"apiVersion": api, "kind": "MutatingAdmissionPolicy",
         "metadata": {"name": "bench-cel"},
         "spec": {"matchConstraints": rules, "matchConditions": conditions,
                  "failurePolicy": "Fail", "reinvocationPolicy": "Never",
                  "mutations": [{"patchType": "JSONPatch",
                                 "jsonPatch": {"expression": patch}}]}},
        {"apiVersion": api, "kind": "MutatingAdmissionPolicyBinding",
         "metadata": {"name": "bench-cel"},
         "spec": {"policyName": "bench-cel", "matchResources": scope}},
        {"apiVersion": api, "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": "bench-cel"},
         "spec": {"matchConstraints": rules, "matchConditions": conditions,
                  "failurePolicy": "Fail",
                  "validations": [{"expression": e, "message": m} for e, m in validations]}},
        {"apiVersion": api, "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": "bench-cel"},
         "spec": {"policyName": "bench-cel", "validationActions": ["Deny"],
                  "matchResources": scope}},
    ]


RESOURCE_PATHS = {
    "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
    "MutatingAdmissionPolicy": "mutatingadmissionpolicies",
    "MutatingAdmissionPolicyBinding": "mutatingadmissionpolicybindings",
    "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
}


def our_answers(pod: dict, namespace: str, policies: Path) -> dict:
    """{"mutate": response, "validate": response}: our answers for `pod` in `namespace`."""
    from tests.support.admission_reviews import pod_review
    from webhook import review
    from webhook.mutation.mutate import mutate_pod
    from webhook.policy.load import load_policy_dir

    loaded = load_policy_dir(policies).policy_set
    user = scheduler_username(namespace)
    pod = {**pod, "metadata": {**pod["metadata"], "namespace": namespace}}
    mutated = mutate_pod(json.loads(json.dumps(pod)), loaded, namespace, user).pod
    answers = {}
    for hook, obj in ((review.MUTATE, pod), (review.VALIDATE, mutated)):
        _, body, _ = review.answer(hook, pod_review(obj, namespace=namespace, username=user),
                                   loaded)
        answers[hook] = body["response"]
    return answers


# --- the client: raw HTTP/1.1 over kept-alive TLS, as client-go speaks -----------------------


class ApiClient:
    """The admin's client-cert connection to kube-apiserver, for setup and sequential creates."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sock = open_connection(target)

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str, path: str, body: bytes = b"",
                impersonate: str | None = None) -> tuple[int, bytes]:
        return round_trip(self.sock, http_request(self.target, method, path, body, impersonate))

    def get(self, path: str) -> tuple[int, dict]:
        status, body = self.request("GET", path)
        return status, json.loads(body) if body else {}

    def create(self, obj: dict) -> None:
        path = f"/apis/admissionregistration.k8s.io/v1/{RESOURCE_PATHS[obj['kind']]}"
        status, body = self.request("POST", path, json.dumps(obj).encode())
        if status != 201:
            raise RuntimeError(f"creating {obj['kind']} {obj['metadata']['name']}: HTTP {status} "
                               f"{body[-1500:]!r}")


def http_request(target: Target, method: str, path: str, body: bytes = b"",
                 impersonate: str | None = None) -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\n"
            f"Host: {target.server_hostname}:{target.port}\r\n"
            "User-Agent: airflow-pod-webhook-bench\r\n"
            "Accept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n")
    if body:
        head += "Content-Type: application/json\r\n"
    if impersonate:
        head += f"Impersonate-User: {impersonate}\r\n"
    return (head + "\r\n").encode() + body


class PodCreates:
    """Ready-to-send pod CREATE requests for one namespace, each pod with its own name."""

    PLACEHOLDER = "@@bench-name@@"

    def __init__(self, target: Target, namespace: str, pod: dict) -> None:
        self.target, self.namespace = target, namespace
        pod = json.loads(json.dumps(pod))
        pod["metadata"]["namespace"] = namespace
        pod["metadata"]["name"] = self.PLACEHOLDER
        self.body = json.dumps(pod, separators=(",", ":")).encode()
        self.user = scheduler_username(namespace)
        self.count = 0

    def next(self) -> bytes:
        self.count += 1
        name = f"executor-{self.count:07d}".encode()
        return http_request(self.target, "POST", f"/api/v1/namespaces/{self.namespace}/pods",
                            self.body.replace(self.PLACEHOLDER.encode(), name, 1), self.user)

    def batch(self, size: int, label: str) -> list[Request]:
        return [Request(label, "executor", data, len(data))
                for data in (self.next() for _ in range(size))]


# --- the run --------------------------------------------------------------------------------


@dataclass
class AdmissionPath:
    name: str
    namespace: str
    creates: PodCreates
    server: Server | None = None  # the webhook server whose CPU this path uses, if any
    client: ApiClient | None = None


def effective(client: ApiClient, path: AdmissionPath, pod: dict, deadline: float) -> str:
    """Probe until the path's admission is in force ('' then), else say what is missing.

    Mutation: the created pod carries the path's mark. Validation: a hostNetwork pod is denied.
    """
    mark = {REPLAY: APPLIED, TWO_HOOKS: APPLIED, SINGLE: APPLIED, CEL: CEL_MARK
            }.get(path.name)
    if mark is None:
        return ""
    validates = path.name != REPLAY
    last = "nothing tried"
    mutated = False
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        probe = json.loads(json.dumps(pod))
        probe["metadata"].update(namespace=path.namespace, name=f"probe-{attempt}")
        if mutated:
            probe["spec"]["hostNetwork"] = True  # no mutation here touches it
        status, body = client.request("POST", f"/api/v1/namespaces/{path.namespace}/pods",
                                      json.dumps(probe).encode(), path.creates.user)
        if not mutated:
            if status == 201 and mark in json.loads(body)["metadata"].get("annotations", {}):
                if not validates:
                    return ""
                mutated = True
                continue
            last = f"HTTP {status}, not mutated yet: {body[:200]!r}"
        elif status in (400, 403, 422):
            return ""
        else:
            last = f"hostNetwork probe got HTTP {status}"
        time.sleep(0.3)
    return last


def run_sequential(paths: list[AdmissionPath], figures: dict[str, PathFigures],
                   settings: ApiServerSettings) -> None:
    """One create per path in turn, the order rotating each cycle: a burst of load from
    elsewhere on the host falls on every path alike."""
    for r in range(settings.sequential_creates):
        for path in paths[r % len(paths):] + paths[:r % len(paths)]:
            assert path.client is not None
            fig = figures[path.name]
            data = path.creates.next()
            started = time.perf_counter()
            status, body = round_trip(path.client.sock, data)
            elapsed = time.perf_counter() - started
            if status != 201:
                fig.errors += 1
                fig.error_text = fig.error_text or f"HTTP {status}: {body[:300]!r}"
                continue
            fig.sequential.append(elapsed)


def run_concurrent(paths: list[AdmissionPath], figures: dict[str, PathFigures], target: Target,
                   settings: ApiServerSettings, apiserver_pid: int) -> None:
    """Rounds: each path in turn, `processes` x `connections` creators in a closed loop."""
    phase = Phase(duration=settings.concurrent_seconds, connections=settings.connections,
                  processes=settings.processes, ok_status=201, ok_marker=b'"kind":"Pod"')
    cap = int(settings.concurrent_seconds * 2000)  # above any creates/s this host reaches
    for r in range(settings.concurrent_rounds):
        order = paths[r % len(paths):] + paths[:r % len(paths)]
        for path in order:
            fig = figures[path.name]
            requests = path.creates.batch(cap, path.name)
            webhook_before = path.server.cpu_seconds() if path.server else 0.0
            api_before = process_cpu_seconds(apiserver_pid)
            result = run_phase(target, replace(phase, max_requests=cap),
                               requests)
            fig.apiserver_cpu += process_cpu_seconds(apiserver_pid) - api_before
            if path.server:
                fig.webhook_cpu += path.server.cpu_seconds() - webhook_before
            fig.creates += result.completed
            fig.throughput.append(result.completed / (result.elapsed or math.nan))
            fig.errors += result.errors + result.denied
            fig.error_text = fig.error_text or result.error_text


@contextlib.contextmanager
def control_plane(assets: Path, workdir: Path) -> Iterator[object]:
    from tests.e2e.envtest import EnvtestControlPlane

    plane = EnvtestControlPlane(assets, workdir / "envtest")
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


@dataclass
class Rig:
    """A running control plane with every path registered, in force and warmed up."""

    plane: object
    target: Target
    paths: list[AdmissionPath]
    trivial: Server
    webhook: Server

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.paths]


class NotInForce(RuntimeError):
    pass


def namespace_of(path: str, suffix: str) -> str:
    """airflow-e2e-*: where the e2e policy set trusts the Airflow scheduler's account."""
    return f"airflow-e2e-bench-{SLUG[path]}-{suffix}"


@contextlib.contextmanager
def rig(settings: ApiServerSettings, workdir: Path, assets: Path) -> Iterator[Rig]:
    from tests.e2e.harness import E2EEnvironment
    from tests.e2e.scenarios import e2e_policies
    from webhook.cluster.certs import write_certs
    from webhook.policy.load import load_policy_dir

    cert_dir = workdir / "apiserver-bench-certs"
    write_certs(cert_dir, "airflow-pod-webhook", "airflow-pod-webhook")
    ca = (cert_dir / "ca.crt").read_bytes()
    # The e2e suite's policy set: the bundled policies, whose Settings also trust the Airflow
    # accounts of airflow-e2e-* namespaces, so the scheduler here is trusted as in a cluster.
    policies = e2e_policies(workdir / "policies")
    accounts = load_policy_dir(policies).policy_set.settings.airflow_usernames
    pod = json.loads(POD_FIXTURE.read_text())
    suffix = os.urandom(3).hex()

    def spec(kind: str) -> ServerSpec:
        return ServerSpec(kind, policies, cert_dir, settings.served_workers,
                          settings.served_threads, settings.log_level)

    answers_file = workdir / "our-answers.json"
    answers_file.write_text(json.dumps(our_answers(pod, namespace_of(REPLAY, suffix),
                                                   policies)))
    with control_plane(assets, workdir) as plane, running(spec("ceiling"), workdir) as trivial, \
            running(replace(spec("ceiling-replay"),
                            extra_args=("--answers-file", str(answers_file))),
                    workdir) as replay, \
            running(spec("webhook"), workdir) as webhook:
        env = E2EEnvironment("envtest", workdir)
        env.control_plane = plane  # its namespace set-up (ServiceAccounts, RBAC) is reused
        ca_file = workdir / "apiserver-ca.crt"
        ca_file.write_bytes(plane.certs.serving_ca)
        (workdir / "admin.crt").write_bytes(plane.certs.admin_cert)
        (workdir / "admin.key").write_bytes(plane.certs.admin_key)
        target = Target(port=plane.secure_port, cafile=ca_file, server_hostname="localhost",
                        certfile=workdir / "admin.crt", keyfile=workdir / "admin.key")
        admin = ApiClient(target)
        _, discovery = admin.get("/apis/admissionregistration.k8s.io/v1")
        served = {r["name"] for r in discovery.get("resources", [])}
        names = [NONE, TRIVIAL, REPLAY, TWO_HOOKS, SINGLE]
        if {"mutatingadmissionpolicies", "validatingadmissionpolicies"} <= served:
            names.append(CEL)
        else:
            print("(the API server does not serve admissionregistration.k8s.io/v1 "
                  "MutatingAdmissionPolicy: no built-in CEL pair)")
        paths = []
        for name in names:
            namespace = namespace_of(name, suffix)
            env.create_namespace(namespace)
            server = {TRIVIAL: trivial, REPLAY: replay, TWO_HOOKS: webhook,
                      SINGLE: webhook}.get(name)
            paths.append(AdmissionPath(name, namespace, PodCreates(target, namespace, pod),
                                       server))
        by_name = {p.name: p for p in paths}
        # The trivial hooks first: configurations of one kind reach the admission plugin in
        # creation order, so once ours are in force (probed below) the trivial ones are too.
        for obj in webhook_objects("trivial", ca, trivial.target_url,
                                   by_name[TRIVIAL].namespace, airflow_usernames=accounts):
            admin.create(obj)
        for obj in webhook_objects("replay", ca, replay.target_url,
                                   by_name[REPLAY].namespace, airflow_usernames=accounts):
            admin.create(obj)
        for obj in webhook_objects("single", ca, webhook.target_url, by_name[SINGLE].namespace,
                                   single_call=True, airflow_usernames=accounts):
            admin.create(obj)
        for obj in webhook_objects("two", ca, webhook.target_url, by_name[TWO_HOOKS].namespace,
                                   airflow_usernames=accounts):
            admin.create(obj)
        if CEL in by_name:
            for obj in cel_objects(by_name[CEL].namespace):
                admin.create(obj)
        deadline = time.monotonic() + EFFECTIVE_TIMEOUT
        for path in paths:
            problem = effective(admin, path, pod, deadline)
            if problem:
                raise NotInForce(f"{path.name} not in force within {EFFECTIVE_TIMEOUT:.0f} s: "
                                 f"{problem}")
        admin.close()
        for path in paths:
            path.client = ApiClient(target)
            for _ in range(settings.warmup):  # every connection made, every cache warm
                round_trip(path.client.sock, path.creates.next())
        try:
            yield Rig(plane, target, paths, trivial, webhook)
        finally:
            for path in paths:
                if path.client is not None:
                    path.client.close()


def run(settings: ApiServerSettings, workdir: Path) -> int:
    """Print the section; 0 when it ran or skipped, 1 when a path misbehaved."""
    print("\n## Pod creates through kube-apiserver (issue 14)\n")
    assets, temporary, why = find_assets()
    if assets is None:
        print(f"skipped: no API server binaries: {why}; set KUBEBUILDER_ASSETS to "
              "setup-envtest's folder")
        return 0
    started = time.perf_counter()
    print(f"load average at start: {load_average()}")
    try:
        with rig(settings, workdir, assets) as r:
            print(f"... through kube-apiserver: {len(r.paths)} paths ready", file=sys.stderr)
            figures = {p.name: PathFigures(p.name) for p in r.paths}
            run_sequential(r.paths, figures, settings)
            run_concurrent(r.paths, figures, r.target, settings, r.plane.apiserver.popen.pid)
            names = r.names
    except NotInForce as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    print_section(figures, names, settings)
    print(f"\n(section took {time.perf_counter() - started:.0f} s; load average at the end: "
          f"{load_average()})")
    return 1 if any(f.errors for f in figures.values()) else 0


def _ratio(a: float, b: float) -> str:
    return "-" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}"


def throughput_ratio(a: PathFigures, b: PathFigures) -> float:
    """Median over rounds of a's creates/s over b's, each pair measured in the same round."""
    pairs = [x / y for x, y in zip(a.throughput, b.throughput, strict=True) if y]
    return statistics.median(pairs) if pairs else math.nan


def print_section(figures: dict[str, PathFigures], names: list[str],
                  settings: ApiServerSettings) -> None:
    workers, threads = settings.served_workers, settings.served_threads
    print(f"paths take turns: {settings.sequential_creates} sequential creates per path, one "
          f"path after the other, then {settings.concurrent_rounds} rounds "
          f"x {settings.concurrent_seconds:g} s with {settings.processes * settings.connections} "
          f"concurrent creators; order rotates each round. Pod: {POD_FIXTURE.name}, created as "
          f"the scheduler's ServiceAccount. Webhooks: gunicorn {workers} workers x {threads} "
          "threads, TLS, log level info; ratios are within this run.\n")
    none, trivial = figures[NONE], figures[TRIVIAL]
    rows = []
    for name in names:
        f = figures[name]
        creates = statistics.median(f.throughput) if f.throughput else math.nan
        rows.append([
            name, f"{f.p50 * 1000:.2f}", f"{f.p99 * 1000:.2f}",
            _ratio(f.p50, none.p50), _ratio(f.p50, trivial.p50),
            f"{creates:.0f}", f"{throughput_ratio(f, none):.2f}",
            f"{throughput_ratio(f, trivial):.2f}",
            f"{f.apiserver_cpu * 1000 / f.creates:.2f}" if f.creates else "-",
            f"{f.webhook_cpu * 1000 / f.creates:.2f}" if f.creates and name in (
                TRIVIAL, REPLAY, TWO_HOOKS, SINGLE) else "-",
            str(f.errors)])
    print(table(["path", "p50 ms", "p99 ms", "p50 / none", "p50 / trivial", "creates/s",
                 "creates/s / none", "creates/s / trivial", "apiserver CPU ms/create",
                 "webhook CPU ms/create", "errors"], rows))
    for f in figures.values():
        if f.errors:
            print(f"  ! {f.name}: {f.errors} errors, first: {f.error_text}")
    two, single = figures[TWO_HOOKS], figures[SINGLE]
    lines = ["", "Targets (issue 14):"]
    p50 = two.p50 / trivial.p50
    lines.append(_line(f"two hooks p50 = {p50:.2f} x trivial webhook", p50 <= TARGET_P50,
                       f"≤ {TARGET_P50}"))
    creates = throughput_ratio(two, trivial)
    lines.append(_line(f"two hooks creates/s = {creates:.2f} x trivial webhook "
                       f"(median of {len(two.throughput)} rounds)", creates >= TARGET_CREATES,
                       f"≥ {TARGET_CREATES}"))
    if REPLAY in figures:
        replay = figures[REPLAY]
        lines.append(f"- two hooks against the trivial webhook giving our answers "
                     f"(kube-apiserver's cost of a mutation taken out): p50 "
                     f"{two.p50 / replay.p50:.2f} x, creates/s "
                     f"{throughput_ratio(two, replay):.2f} x")
    if CEL in figures:
        cel = figures[CEL]
        ratio = single.p50 / cel.p50
        lines.append(_line(f"single-call p50 = {ratio:.2f} x built-in CEL pair "
                           f"({single.p50 * 1000:.2f} vs {cel.p50 * 1000:.2f} ms)",
                           ratio <= TARGET_SINGLE_VS_CEL, "≤ 1.0"))
    else:
        lines.append("- single-call vs built-in CEL pair: not measured (no "
                     "MutatingAdmissionPolicy on this API server)")
    print("\n".join(lines))
    if settings.sequential_creates < 50:
        print("\n(--quick: a handful of creates; these figures mean nothing)")


def _line(text: str, met: bool, goal: str) -> str:
    return f"- {text} (target {goal}): {'met' if met else 'NOT met'}"
