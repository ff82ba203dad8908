"""The bench runs and prints its tables (`python -m bench --quick`); the single-call answer
agrees with the two calls it replaces. Shapes and decisions only: never a timing."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import POLICIES, ROOT
from webhook import review
from webhook.policy.model import PolicySet

POLICY_TEST_PODS = sorted((POLICIES / "tests" / "pods").glob("*.json"))


@pytest.fixture(scope="module")
def quick_output() -> str:
    # The server-only section; the kube-apiserver one has its own test below.
    done = subprocess.run([sys.executable, "-m", "bench", "--section", "server", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
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
    from webhook.mutation.mutate import mutate_pod

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


def _assets_or_skip() -> str:
    assets = os.environ.get("KUBEBUILDER_ASSETS") or str(ROOT.parent / "shared" / "k8s" / "bin")
    if not Path(assets, "kube-apiserver").is_file() or not Path(assets, "etcd").is_file():
        pytest.skip(f"no API server binaries in {assets}")
    return assets  # the bench copies binaries that lack the run bit into a scratch folder


def test_apiserver_section_skips_in_one_line_without_binaries(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--section", "apiserver", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KUBEBUILDER_ASSETS": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    section = done.stdout.split("## Pod creates through kube-apiserver", 1)[1]
    lines = [line for line in section.splitlines() if line.strip() and "(issue 14)" not in line]
    assert len(lines) == 1 and lines[0].startswith("skipped: no API server binaries")
    assert str(tmp_path) in lines[0]


def test_apiserver_section_measures_every_path_through_a_real_api_server() -> None:
    """Tiny: a few creates per path. Shapes and correctness only, never a timing."""
    assets = _assets_or_skip()
    done = subprocess.run([sys.executable, "-m", "bench", "--section", "apiserver", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KUBEBUILDER_ASSETS": assets})
    assert done.returncode == 0, done.stdout + done.stderr
    section = done.stdout.split("## Pod creates through kube-apiserver", 1)[1]
    rows = {cells[0]: cells for cells in (
        [c.strip() for c in line.split("|")[1:-1]] for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| path"))}
    assert {"no webhook", "trivial webhook", "trivial webhook, our answers",
            "webhook, two hooks", "webhook, single call", "built-in CEL pair"} <= set(rows)
    for cells in rows.values():
        assert cells[-1] == "0", f"creates failed on this path: {cells}"
        assert float(cells[1]) > 0 and float(cells[5]) > 0  # p50 ms, creates/s
    assert rows["no webhook"][3] == "1.00" and rows["trivial webhook"][4] == "1.00"
    targets = section.split("Targets (issue 14):", 1)[1]
    assert targets.count("(target ") == 3


def test_binaries_without_the_run_bit_are_run_from_a_temporary_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.apiserver import find_assets

    shipped = tmp_path / "read-only-assets"
    shipped.mkdir()
    for name in ("kube-apiserver", "etcd"):
        (shipped / name).write_bytes(b"#!/bin/sh\necho " + name.encode() + b"\n")
        (shipped / name).chmod(0o444)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(shipped))
    folder, temporary, why = find_assets()
    try:
        assert why == "" and folder is not None and folder == temporary and folder != shipped
        for name in ("kube-apiserver", "etcd"):
            assert os.access(folder / name, os.X_OK)
            assert (folder / name).read_bytes() == (shipped / name).read_bytes()
            assert (shipped / name).stat().st_mode & 0o777 == 0o444  # the original untouched
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    for name in ("kube-apiserver", "etcd"):
        (shipped / name).chmod(0o755)
    assert find_assets() == (shipped, None, "")  # runnable as they are: used in place
    (shipped / "etcd").unlink()
    folder, temporary, why = find_assets()
    assert folder is None and temporary is None and "has no etcd" in why


def test_each_path_is_registered_as_manifests_renders_it_scoped_to_its_namespace() -> None:
    from bench.apiserver import webhook_objects
    from webhook.cluster.registration import webhook_configurations

    ca = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    url = "https://127.0.0.1:9443"
    accounts = ("system:serviceaccount:airflow-e2e-*:airflow-scheduler",)  # the served set's
    for single_call in (False, True):
        rendered = webhook_configurations(ca, url=url, single_call=single_call,
                                          airflow_usernames=accounts)
        scoped = webhook_objects("two", ca, url, "bench-two-abc", single_call=single_call,
                                 airflow_usernames=accounts)
        assert [o["kind"] for o in scoped] == [o["kind"] for o in rendered]
        for mine, theirs in zip(scoped, rendered, strict=True):
            assert mine["metadata"]["name"] == "bench-two"
            for hook, original in zip(mine["webhooks"], theirs["webhooks"], strict=True):
                terms = hook["namespaceSelector"]["matchExpressions"]
                assert terms[:-1] == original["namespaceSelector"]["matchExpressions"]
                assert terms[-1] == {"key": "kubernetes.io/metadata.name", "operator": "In",
                                     "values": ["bench-two-abc"]}
                rest = {k: v for k, v in hook.items() if k != "namespaceSelector"}
                assert rest == {k: v for k, v in original.items() if k != "namespaceSelector"}


def test_the_bench_scheduler_is_a_trusted_creator(tmp_path: Path) -> None:
    """The through-kube-apiserver bench measures what a cluster runs: the scheduler trusted,
    so the pod gets its profiles and task policy (and the replayed answers are those)."""
    from bench.apiserver import POD_FIXTURE, TWO_HOOKS, namespace_of, our_answers
    from tests.e2e.scenarios import e2e_policies

    pod = json.loads(POD_FIXTURE.read_text())
    answers = our_answers(pod, namespace_of(TWO_HOOKS, "t"), e2e_policies(tmp_path / "p"))
    for response in answers.values():
        assert response["allowed"] is True
        assert not any("trusted creator" in w for w in response.get("warnings", []))
        assert "untrusted-creator" not in response.get("auditAnnotations", {})
    patch = json.loads(base64.b64decode(answers["mutate"]["patch"]))
    applied = next(op["value"] for op in patch
                   if op["path"] == "/metadata/annotations/airflow-pod-webhook.io~1applied")
    assert "TaskPolicy/example-dag-extract" in applied


def test_adversarial_section_runs_the_attack_through_a_real_api_server() -> None:
    """Tiny: two seconds a phase, one hostile creator, one direct poster; an attack phase
    without and one with the chart's API Priority and Fairness objects. Shapes, who refused
    what and which FlowSchema classified the hostile creates, never a timing."""
    assets = _assets_or_skip()
    done = subprocess.run([sys.executable, "-m", "bench", "adversarial", "--seconds", "2",
                           "--streams", "1", "--hostile", "1", "--direct", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KUBEBUILDER_ASSETS": assets})
    assert done.returncode == 0, done.stdout + done.stderr
    report = done.stdout.split("## Adversarial load through kube-apiserver (issue 21)", 1)[1]
    table = report[report.index("| legitimate executor pods | creates |"):].split("\n\n")[0]
    rows = {cells[0]: cells for cells in (
        [c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()[2:])}
    assert set(rows) == {"quiet", "under attack", "under attack, APF"}
    for row in rows.values():
        assert int(row[1]) > 0 and int(row[2]) == 0  # creates, refused
    hostile = [line for line in report.splitlines() if line.startswith("Hostile creates")]
    assert len(hostile) == 2
    for line in hostile:
        created, by_webhook = re.match(r"Hostile creates: (\d+), refused by the webhook: "
                                       r"(\d+)", line).groups()
        assert int(created) > 0 and by_webhook == created  # every hostile pod refused by us
    # With the objects applied, kube-apiserver classified every hostile create with them.
    created, classified, of = re.search(
        r"Hostile creates: (\d+),.*classified by the task accounts' FlowSchema: (\d+) of "
        r"(\d+)", hostile[1]).groups()
    assert created == classified == of
    assert "FlowSchema" not in hostile[0]
    assert report.count("Direct 2.86 MiB POSTs to /validate: 200 BadRequest") == 2  # caps
    ratios = re.findall(r"^RATIO (under attack(?:, APF)?): p99 [\d.]+x quiet, 0 refused$",
                        report, re.M)
    assert ratios == ["under attack", "under attack, APF"]
