"""DAG authors' override annotations that try to break out, sent to the real server.

Each is denied by the mutating hook with a message naming the annotation and the reason; a
pod that carries the same thing directly (as it would if the fail-open mutating hook were
down) is denied by the validating hook. Repeating them all does not grow the workers' memory.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

from tests.support.admission_reviews import SCHEDULER
from tests.support.admission_reviews import pod_review as review
from tests.support.paths import POLICIES
from tests.support.pods import airflow_pod
from tests.support.server_process import RunningServer, post, rss_bytes, running_server
from webhook.mutation.mutate import mutate_pod
from webhook.policy.model import PolicySet

OVERRIDE = "airflow-pod-webhook.io/pod-override"
ROUNDS = 8
WARM_UP_ROUNDS = 2  # of ROUNDS, both hooks
MAX_GROWTH = 50 * 1024 * 1024


def fragment(spec: dict) -> str:
    return json.dumps({"spec": spec})


BILLION_LAUGHS = "\n".join(
    [f"l0: &l0 [{', '.join(['lol'] * 10)}]"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    + ["spec: {containers: [{name: base, args: *l8}]}"])

ABUSE = {
    "privileged": ({OVERRIDE: fragment({"containers": [
        {"name": "base", "securityContext": {"privileged": True}}]})},
        "securityContext.privileged: may not be overridden"),
    "hostPath": ({OVERRIDE: fragment({
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [{"name": "base", "volumeMounts": [{"name": "root", "mountPath": "/h"}]}]})},
        "may not be overridden"),
    "hostNetwork": ({OVERRIDE: fragment({"hostNetwork": True})},
                    "spec.hostNetwork: may not be overridden"),
    "locked field": ({OVERRIDE: fragment({"securityContext": {
        "seccompProfile": {"type": "Unconfined"}}})}, "is locked by the cluster template"),
    # Up to 256 KiB (Settings limits.annotationsBytes); past it, see test_megabyte_annotations
    "200 KiB pod-override": ({OVERRIDE: json.dumps({"metadata": {"labels": {
        "x": "y" * (200 << 10)}}})}, "is larger than 65536 bytes"),
    "200 KiB short annotation": ({"airflow-pod-webhook.io/memory": "9" * (200 << 10)},
                                 "annotation airflow-pod-webhook.io/memory: "),
    "YAML billion laughs": ({OVERRIDE: BILLION_LAUGHS}, "YAML aliases are not allowed"),
    "YAML alias in a short annotation": ({OVERRIDE: "a: &x {spec: {}}\nb: *x"},
                                         "YAML aliases are not allowed"),
    "deep flow sequence": ({OVERRIDE: "[" * 60_000}, "is neither JSON nor YAML"),
    "deep flow mapping": ({OVERRIDE: "{a: " * 15_000}, "is neither JSON nor YAML"),
}

# The same escapes written into the pod itself: the validating hook's job.
DIRECT = {
    "privileged": lambda pod: pod["spec"]["containers"][0].update(
        securityContext={"privileged": True}),
    "hostPath": lambda pod: pod["spec"].setdefault("volumes", []).append(
        {"name": "root", "hostPath": {"path": "/"}}),
    "hostNetwork": lambda pod: pod["spec"].update(hostNetwork=True),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    with running_server(tmp_path_factory.mktemp("abuse"), POLICIES, workers=2) as running:
        running.wait_workers(2)
        yield running


def abusive_pod(annotations: dict) -> dict:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"].update(annotations)
    return pod


@pytest.mark.parametrize("name", list(ABUSE))
def test_override_abuse_is_denied_with_a_clear_message(server: RunningServer, name: str) -> None:
    annotations, reason = ABUSE[name]
    status, body, _ = post(server.connect(), "/mutate?timeout=10s",
                           review(abusive_pod(annotations), uid=f"abuse-{name}"))
    answer = body["response"]
    assert status == 200 and answer["uid"] == f"abuse-{name}" and answer["allowed"] is False
    assert answer["status"]["code"] in (400, 403)
    message = answer["status"]["message"]
    assert message.startswith("pod example-dag-extract-x1y2z3w4 (dag_id=example_dag, "
                              "task_id=extract): ")
    assert next(iter(annotations)) in message and reason in message
    assert len(message) <= 4096


@pytest.mark.parametrize("key", [OVERRIDE, "airflow-pod-webhook.io/memory"])
def test_megabyte_annotations_are_refused_by_the_cap_before_being_read(
        server: RunningServer, key: str) -> None:
    pod = abusive_pod({key: "9" * (1 << 20)})
    status, body, _ = post(server.connect(), "/mutate?timeout=10s", review(pod, uid="mb"))
    answer = body["response"]
    assert status == 200 and answer["allowed"] is False and answer["status"]["code"] == 400
    size = sum(len(k) + len(v) for k, v in pod["metadata"]["annotations"].items())
    assert answer["status"]["message"] == (
        "pod example-dag-extract-x1y2z3w4 (dag_id=example_dag, task_id=extract): too large to "
        f"review: metadata.annotations: {size} bytes, more than the cap of 262144 "
        "(Settings limits.annotationsBytes) (webhook: limits)")


@pytest.mark.parametrize("name", list(DIRECT))
def test_the_same_escape_in_the_pod_itself_is_denied_by_validation(
        server: RunningServer, name: str) -> None:
    pod = airflow_pod("airflow3-executor")
    DIRECT[name](pod)
    status, body, _ = post(server.connect(), "/validate?timeout=10s",
                           review(pod, uid=f"direct-{name}"))
    answer = body["response"]
    assert status == 200 and answer["allowed"] is False and answer["status"]["code"] == 403
    assert "(baseline: " in answer["status"]["message"]


def test_abuse_does_not_grow_worker_memory(server: RunningServer) -> None:
    workers = server.wait_workers(2)
    conns = [server.connect() for _ in range(4)]  # connections spread over both workers
    pods = {name: abusive_pod(annotations) for name, (annotations, _) in ABUSE.items()}
    sent = denied = 0
    before: dict[int, int] = {}
    for round_number in range(ROUNDS):
        if round_number == WARM_UP_ROUNDS:
            # Each of a worker's threads reaches its allocator's peak on its first large
            # requests: growth is what comes after that plateau, not the plateau itself.
            before = {pid: rss_bytes(pid) for pid in workers}
        for conn in conns:
            for name, pod in pods.items():
                for hook in ("/mutate", "/validate"):
                    status, body, _ = post(conn, hook, review(pod, uid=name))
                    sent += 1
                    assert status == 200 and body["response"]["uid"] == name
                    denied += hook == "/mutate" and body["response"]["allowed"] is False
    after = {pid: rss_bytes(pid) for pid in workers}
    growth = {pid: after[pid] - before[pid] for pid in workers}
    print(f"\nabuse: {sent} reviews sent ({denied} mutations denied, "
          f"{sent // 2 - denied} let through), worker RSS before/after (MB): "
          + ", ".join(f"{pid}: {before[pid] / 2**20:.1f} -> {after[pid] / 2**20:.1f}"
                      for pid in workers))
    assert denied == sent // 2
    assert server.worker_pids() == workers
    assert all(g < MAX_GROWTH for g in growth.values()), growth
    assert "Traceback" not in server.log()


def decision_lines(server: RunningServer, pod_name: str, count: int = 1) -> list[dict]:
    """The decision-log lines of the requests for the pod named `pod_name`, and only those:
    other tests of this module share the server and its log."""
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in map(_json_line, server.log().splitlines())
                 if "decision" in line]
        mine = [line for line in lines if line["pod"] == pod_name]
        if len(mine) >= count or time.monotonic() > deadline:
            return mine
        time.sleep(0.05)


def _json_line(text: str) -> dict:
    if not text.startswith('{"time"'):
        return {}
    return json.loads(text)


def uniquely_named(pod: dict, label: str) -> dict:
    pod["metadata"]["name"] = f"{label}-{uuid.uuid4().hex[:12]}"
    return pod


def test_abuse_is_logged_without_the_abusive_values(server: RunningServer, tmp_path: Path
                                                    ) -> None:
    """The decision log names the refused rule, never the value that was refused."""
    marker = "Z" * 40 + "-abuse-marker"
    pod = uniquely_named(abusive_pod({OVERRIDE: fragment({"hostNetwork": True,
                                                          "nodeName": marker})}), "abuse-log")
    status, body, _ = post(server.connect(), "/mutate", review(pod, uid="abuse-log"))
    assert status == 200 and body["response"]["allowed"] is False
    [line] = decision_lines(server, pod["metadata"]["name"])
    assert line["hook"] == "mutate" and line["decision"] == "deny"
    assert line["rules"] and all(isinstance(rule, str) for rule in line["rules"])
    assert any(rule.startswith("OverridePolicy") for rule in line["rules"]), line["rules"]
    assert marker not in server.log()


DECISION_FIELDS = {"time", "uid", "username", "operation", "dry_run", "hook", "decision",
                   "namespace", "pod", "dag_id", "task_id", "try_number", "rules", "policies",
                   "revision", "duration_ms"}


def test_decision_log_has_every_field_and_never_args_or_env_values(
        server: RunningServer, bundled: PolicySet) -> None:
    """Airflow 3 puts the task's API token in the worker's args: it must never be logged,
    whatever the review decides."""
    token = "eyJhbGciOiJFUzI1NiJ9.secret-task-token-4f1c"
    secret = "env-secret-value-9b2e"
    pod = airflow_pod("airflow3-executor")
    base = pod["spec"]["containers"][0]
    base["args"] = [*base.get("args", []), "--token", token]
    base.setdefault("env", []).append({"name": "DB_PASSWORD", "value": secret})
    denied = json.loads(json.dumps(pod))
    denied["spec"]["hostNetwork"] = True
    broken = review(pod, uid="leak-broken")
    broken["request"]["operation"] = "EXPLODE"  # refused, with the token still in its args
    conn = server.connect()
    decided = []
    # The validating hook sees the pod as the mutating hook left it (locked fields applied).
    admitted = mutate_pod(pod, bundled, "data-airflow").pod
    for uid, hook, sent, decision in [("leak-mutate", "/mutate", pod, "allow"),
                                      ("leak-validate", "/validate", admitted, "allow"),
                                      ("leak-deny", "/validate", denied, "deny")]:
        sent = uniquely_named(json.loads(json.dumps(sent)), uid)
        status, answer, _ = post(conn, hook, review(sent, uid=uid))
        assert status == 200 and answer["response"]["uid"] == uid
        [line] = decision_lines(server, sent["metadata"]["name"])
        assert (line["hook"], line["decision"]) == (hook.strip("/"), decision)
        decided.append(line)
    status, answer, _ = post(conn, "/mutate", broken)
    assert status == 200 and answer["response"]["uid"] == "leak-broken"
    log = server.log()
    assert token not in log and secret not in log
    for line in decided:
        assert set(line) >= DECISION_FIELDS, DECISION_FIELDS - set(line)
        assert line["dag_id"] == "example_dag" and line["task_id"] == "extract"
        assert line["try_number"] == "2" and len(line["revision"]) == 12
        assert line["uid"].startswith("leak-") and line["operation"] == "CREATE"
        assert line["username"] == SCHEDULER and line["dry_run"] is False
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
        assert line["duration_ms"] > 0
        assert line["policies"] or line["decision"] == "deny"  # refused overrides apply none
