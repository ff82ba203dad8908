"""The AdmissionReviews the bench sends, built once, as the exact bytes kube-apiserver would send.

/mutate gets the pod as Airflow built it; /validate gets the pod as /mutate left it, exactly as
in a cluster, where the validating call comes after the mutating one. Each kind of pod gets
several variants with their own uid and name, so no answer can be cached on the body.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from tests.support.admission_reviews import pod_review
from webhook.mutation.mutate import mutate_pod
from webhook.policy.model import PolicySet

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_PODS = ROOT / "tests" / "fixtures" / "airflow-pods"
POLICY_TEST_PODS = ROOT / "policies" / "tests" / "pods"
NAMESPACE = "data-airflow"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
WORKER = "system:serviceaccount:airflow:airflow-worker"
SVC_HOST = "airflow-pod-webhook.airflow-pod-webhook.svc"
MUTATE, VALIDATE = "mutate", "validate"
HOOKS = (MUTATE, VALIDATE)

# The realistic mix: executor pods (Airflow 2 and 3, plain, with pod_override, with a profile
# annotation) and KubernetesPodOperator pods (with and without the XCom sidecar).
SMALL_PODS: tuple[tuple[str, Path, str], ...] = (
    ("airflow2-executor", FIXTURE_PODS / "airflow2-executor.json", SCHEDULER),
    ("airflow3-executor", FIXTURE_PODS / "airflow3-executor.json", SCHEDULER),
    ("airflow2-executor-pod-override", FIXTURE_PODS / "airflow2-executor-pod-override.json",
     SCHEDULER),
    ("airflow3-executor-pod-override", FIXTURE_PODS / "airflow3-executor-pod-override.json",
     SCHEDULER),
    ("executor-highmem-profile", POLICY_TEST_PODS / "executor-highmem-profile.json", SCHEDULER),
    ("airflow3-kpo", FIXTURE_PODS / "airflow3-kpo.json", WORKER),
    ("airflow3-kpo-xcom", FIXTURE_PODS / "airflow3-kpo-xcom.json", WORKER),
)
BIG_CONTAINERS = 30
BIG_ENV_VARS = 200


@dataclass(frozen=True)
class Request:
    """One ready-to-send HTTP request (or two, sent one after the other)."""

    hook: str  # the label its latency is reported under
    pod: str
    data: bytes  # the whole HTTP/1.1 request: head and body
    body_size: int
    follow_up: bytes = b""  # sent after `data` is answered; latency covers both


def load_pod(path: Path) -> dict:
    return json.loads(path.read_text())


def big_pod(base: dict, containers: int = BIG_CONTAINERS, env_vars: int = BIG_ENV_VARS) -> dict:
    """An executor pod with `containers` containers and `env_vars` env vars in all.

    The base container keeps Airflow's command; the others are sidecars, each with its own
    image, ports, mounts and resources, the shape a busy KubernetesExecutor pod takes.
    """
    pod = copy.deepcopy(base)
    spec = pod["spec"]
    worker = spec["containers"][0]
    per_container = env_vars // containers
    extra = env_vars - per_container * containers
    worker["env"] = [*worker.get("env", []),
                     *({"name": f"BENCH_BASE_{i}", "value": f"value-{i}"}
                       for i in range(max(0, per_container + extra - len(worker.get("env", [])))))]
    for n in range(1, containers):
        spec["containers"].append({
            "name": f"sidecar-{n}",
            "image": f"registry.example.com/sidecars/helper-{n}:1.{n}.0",
            "args": ["--listen", f":{9000 + n}"],
            "env": [{"name": f"SIDECAR_{n}_{i}", "value": f"v{i}"} for i in range(per_container)],
            "ports": [{"containerPort": 9000 + n, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                          "limits": {"memory": "64Mi"}},
            "volumeMounts": [{"name": "scratch", "mountPath": f"/scratch/{n}"}],
        })
    spec.setdefault("volumes", []).append({"name": "scratch", "emptyDir": {}})
    return pod


def env_var_count(pod: dict) -> int:
    return sum(len(c.get("env") or ()) for c in pod["spec"]["containers"])


def admission_review(pod: dict, uid: str, username: str) -> dict:
    """The AdmissionReview kube-apiserver sends for a pod CREATE (admission.k8s.io/v1)."""
    return pod_review(pod, uid=uid, namespace=NAMESPACE, username=username)


def http_request(hook: str, body: bytes, host: str = SVC_HOST) -> bytes:
    """The request line and headers Go's net/http client writes for kube-apiserver's call."""
    head = (f"POST /{hook}?timeout=10s HTTP/1.1\r\n"
            f"Host: {host}:443\r\n"
            "User-Agent: kube-apiserver-admission\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Accept: application/json, */*\r\n"
            "Content-Type: application/json\r\n"
            "Accept-Encoding: gzip\r\n\r\n")
    return head.encode() + body


def build_requests(pods: list[tuple[str, dict, str]], policies: PolicySet,
                   variants: int = 8) -> list[Request]:
    """Interleaved /mutate and /validate requests: `variants` of each pod for each hook."""
    out: list[Request] = []
    for v in range(variants):
        for name, pod, username in pods:
            raw = copy.deepcopy(pod)
            raw["metadata"]["name"] = f"{raw['metadata'].get('name', name)}-{v:04d}"
            mutated = mutate_pod(raw, policies, NAMESPACE, username)
            if mutated.refusals:
                raise ValueError(f"bench pod {name} is refused by the bundled policies: "
                                 f"{mutated.refusals}")
            for hook, obj in ((MUTATE, raw), (VALIDATE, mutated.pod)):
                review = admission_review(obj, f"bench-{hook}-{name}-{v:04d}", username)
                body = json.dumps(review, separators=(",", ":")).encode()
                out.append(Request(hook, name, http_request(hook, body), len(body)))
    return out


def small_pods() -> list[tuple[str, dict, str]]:
    return [(name, load_pod(path), user) for name, path, user in SMALL_PODS]


def big_pods() -> list[tuple[str, dict, str]]:
    base = load_pod(FIXTURE_PODS / "airflow3-executor.json")
    return [("big-executor", big_pod(base), SCHEDULER)]


CREATE_TWO_CALLS = "create: mutate+validate"
CREATE_ONE_CALL = "create: single call"


def pod_creates(requests: list[Request]) -> list[Request]:
    """Each pod create as kube-apiserver makes it today: /mutate, then /validate."""
    mutates = [r for r in requests if r.hook == MUTATE]
    validates = [r for r in requests if r.hook == VALIDATE]
    return [Request(CREATE_TWO_CALLS, m.pod, m.data, m.body_size + v.body_size, v.data)
            for m, v in zip(mutates, validates, strict=True)]


def single_calls(requests: list[Request]) -> list[Request]:
    """Each pod create in single-call mode: one POST /mutate-validate (mutate, then judge)."""
    return [Request(CREATE_ONE_CALL, r.pod,
                    r.data.replace(b"POST /mutate?", b"POST /mutate-validate?", 1), r.body_size)
            for r in requests if r.hook == MUTATE]
