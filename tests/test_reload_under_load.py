"""Replace the policy folder 100 times, as a ConfigMap update does, while reviews stream in.

Two valid sets give distinguishable patches (set B adds a label); a third of the pushes are
broken (bad YAML, schema errors). Every review must be answered, and its patch must be the
one its revision gives offline: a broken or half-swapped set must never decide anything.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.admission_reviews import pod_review as review
from tests.support.paths import POLICIES
from tests.support.pods import airflow_pod
from tests.support.policy_folders import BAD_SCHEMA, BAD_YAML, SET_A, SET_B
from tests.support.server_process import ConfigMapFolder, RunningServer, post, running_server
from webhook.policy.load import load_policy_dir
from webhook.review import MUTATE, answer

SWAPS = 100
STREAMS = 3


def expected_answers(tmp: Path) -> dict[str, str]:
    """revision -> the base64 patch the mutating hook gives our pod under that set."""
    expected = {}
    for name, files in (("a", SET_A), ("b", SET_B)):
        folder = tmp / f"offline-{name}"
        folder.mkdir()
        for file, data in files.items():
            (folder / file).write_bytes(data)
        policy_set = load_policy_dir(folder).policy_set
        _, body, _ = answer(MUTATE, review(airflow_pod("airflow3-executor")), policy_set)
        expected[policy_set.revision] = body["response"]["patch"]
    assert len(set(expected.values())) == 2, "the two sets must give different patches"
    return expected


class Stream:
    def __init__(self, server: RunningServer, expected: dict[str, str]) -> None:
        self.server, self.expected = server, expected
        self.sent = 0
        self.failures: list[str] = []
        self.misdecided: list[str] = []
        self.revisions: Counter = Counter()
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self, index: int) -> None:
        conn = self.server.connect()
        pod = airflow_pod("airflow3-executor")
        n = 0
        while not self.stop.is_set():
            n += 1
            uid = f"r-{index}-{n}"
            try:
                status, body, _ = post(conn, "/mutate?timeout=10s", review(pod, uid=uid))
            except Exception as exc:
                with self.lock:
                    self.sent += 1
                    self.failures.append(f"{uid}: {exc!r}")
                conn.close()
                conn = self.server.connect()
                continue
            self.record(uid, status, body)
        conn.close()

    def record(self, uid: str, status: int, body: dict) -> None:
        response = body.get("response") or {}
        revision = (response.get("auditAnnotations") or {}).get("policy-revision")
        with self.lock:
            self.sent += 1
            if status != 200 or response.get("uid") != uid or response.get("allowed") is not True:
                self.failures.append(f"{uid}: HTTP {status} {body!r:.300}")
            elif revision not in self.expected or response.get("patch") != self.expected[revision]:
                patch = json.loads(base64.b64decode(response.get("patch") or "W10="))
                self.misdecided.append(f"{uid}: revision {revision}: {patch!r:.300}")
            else:
                self.revisions[revision] += 1


@pytest.fixture
def server(tmp_path: Path):
    ConfigMapFolder(tmp_path / "policies").write(SET_A)
    with running_server(tmp_path, POLICIES, workers=2) as running:
        yield running


def test_reviews_stay_right_while_the_folder_is_replaced_100_times(
        server: RunningServer, tmp_path: Path) -> None:
    expected = expected_answers(tmp_path)
    revision_of = {"A": next(r for r, p in expected.items()
                             if "policy-variant" not in str(base64.b64decode(p))),
                   "B": next(r for r, p in expected.items()
                             if "policy-variant" in str(base64.b64decode(p)))}
    mount = ConfigMapFolder(server.policies)
    mount.generation = 1
    failures_before = server.metric("airflow_pod_webhook_policy_reloads_total",
                                    result="failure")
    stream = Stream(server, expected)
    threads = [threading.Thread(target=stream.run, args=(i,)) for i in range(STREAMS)]
    for thread in threads:
        thread.start()

    pushed: Counter = Counter()
    final = "A"
    started = time.monotonic()
    try:
        for i in range(SWAPS):
            if i % 3 == 2:  # broken pushes stay long enough for the watchers to see most
                mount.write(BAD_YAML if i % 2 else BAD_SCHEMA)
                pushed["broken"] += 1
                time.sleep(0.25)
            else:
                final = "B" if final == "A" else "A"
                mount.write(SET_A if final == "A" else SET_B)
                pushed[final] += 1
                time.sleep(0.1)
        swapped = time.monotonic() - started
        # every worker ends on the final set (livemax: 0 only once no worker serves it)
        deadline = time.monotonic() + 15
        while not (server.metric("airflow_pod_webhook_policy_revision_info",
                                 revision=revision_of[final]) == 1
                   and server.metric("airflow_pod_webhook_policy_revision_info",
                                     revision=revision_of["B" if final == "A" else "A"]) == 0):
            assert time.monotonic() < deadline, "workers never all served the final set"
            time.sleep(0.1)
        served_before_stop = stream.sent
        time.sleep(0.3)
    finally:
        stream.stop.set()
        for thread in threads:
            thread.join(timeout=30)

    # after the last swap, fresh connections (either worker) get the final set's patch
    for n in range(6):
        _, body, _ = post(server.connect(), "/mutate", review(
            airflow_pod("airflow3-executor"), uid=f"final-{n}"))
        assert body["response"]["auditAnnotations"]["policy-revision"] == revision_of[final]
        assert body["response"]["patch"] == expected[revision_of[final]]

    reload_failures = server.metric("airflow_pod_webhook_policy_reloads_total",
                                    result="failure") - failures_before
    reload_successes = server.metric("airflow_pod_webhook_policy_reloads_total",
                                     result="success")
    print(f"\n{SWAPS} folder replacements in {swapped:.1f}s (A {pushed['A']}, B {pushed['B']}, "
          f"broken {pushed['broken']}); {reload_successes:.0f} successful loads and "
          f"rejected {reload_failures:.0f} broken folders; {stream.sent} reviews sent "
          f"({served_before_stop} before all workers settled), {len(stream.failures)} "
          f"failures, {len(stream.misdecided)} mis-decided; per revision "
          f"{ {r[:8]: n for r, n in stream.revisions.items()} }")
    assert not stream.failures, "\n".join(stream.failures[:10])
    assert not stream.misdecided, "\n".join(stream.misdecided[:10])
    assert stream.sent > 100
    assert set(stream.revisions) == set(expected), "both sets should have decided reviews"
    assert reload_failures > 0, "no broken push was ever seen: the test proved nothing"
    assert "Traceback" not in server.log()
