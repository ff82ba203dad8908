"""The bench runs and prints its tables (`python -m bench --quick`); the single-call answer
agrees with the two calls it replaces. Shapes and decisions only: never a timing."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from tests.conftest import POLICIES, ROOT
from webhook import review
from webhook.policy.model import PolicySet

POLICY_TEST_PODS = sorted((POLICIES / "tests" / "pods").glob("*.json"))


@pytest.fixture(scope="module")
def quick_output() -> str:
    done = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_quick_bench_prints_every_table(quick_output: str) -> None:
    for heading in ("## Throughput and latency", "## Footprint", "## Pure core, per call",
                    "## Summary against the issue's targets"):
        assert heading in quick_output
    assert "machine: " in quick_output and "Python " in quick_output


def test_quick_bench_measures_every_server_and_hook(quick_output: str) -> None:
    table_rows = [line for line in quick_output.splitlines() if line.startswith("| ")]
    servers = {line.split("|")[1].strip() for line in table_rows}
    assert {"ceiling", "webhook, 1 policy", "webhook, 20 policies",
            "single-call, 1 policy"} <= servers
    hooks = {line.split("|")[6].strip() for line in table_rows if line.count("|") > 12}
    assert {"mutate", "validate", "create: mutate+validate", "create: single call"} <= hooks
    for line in table_rows:
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 13 and cells[0] and cells[0] != "server":
            assert cells[11] == "0", f"the server answered with errors: {line}"


def test_quick_bench_reports_targets_and_footprint(quick_output: str) -> None:
    summary = quick_output.split("## Summary against the issue's targets", 1)[1]
    for figure in ("x ceiling", "p99 mutate", "p99 validate", "20 vs 1 policy files",
                   "big vs small pod", "RSS per worker", "ready in", "single-call mode"):
        assert figure in summary
    assert summary.count("(target ") >= 6


def _review(pod: dict, username: str) -> dict:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "resource": {"group": "", "version": "v1", "resource": "pods"},
                        "operation": "CREATE", "namespace": "data-airflow", "object": pod,
                        "userInfo": {"username": username}, "dryRun": False}}


@pytest.mark.parametrize("path", POLICY_TEST_PODS, ids=lambda p: p.stem)
@pytest.mark.parametrize("username", ["system:serviceaccount:airflow:airflow-scheduler",
                                      "system:serviceaccount:airflow:someone-else"])
def test_single_call_decides_as_mutate_then_validate(path, username: str,
                                                     bundled: PolicySet) -> None:
    pod = json.loads(path.read_text())
    _, mutated, _ = review.answer(review.MUTATE, _review(copy.deepcopy(pod), username), bundled)
    _, single, decision = review.answer(review.MUTATE_AND_VALIDATE,
                                        _review(copy.deepcopy(pod), username), bundled)
    assert decision.hook == review.MUTATE_AND_VALIDATE
    if not mutated["response"]["allowed"]:
        assert single["response"] == mutated["response"]
        return
    from webhook.mutate import mutate_pod

    result = mutate_pod(copy.deepcopy(pod), bundled, "data-airflow", username)
    _, validated, _ = review.answer(review.VALIDATE, _review(result.pod, username), bundled)
    answer = single["response"]
    assert answer["allowed"] == validated["response"]["allowed"]
    if answer["allowed"]:
        assert answer.get("patch") == mutated["response"].get("patch")
    else:
        assert answer["status"] == validated["response"]["status"]
        assert "patch" not in answer
    for warning in validated["response"].get("warnings", []):
        assert warning in answer.get("warnings", [])
