"""The CLI as a CI gate (webhook.cli.entry): one exit-code contract for every command, kept
through a closed pipe, and nothing reported "allowed" that was never checked. (The server's own
input limits, which every command reading a pod keeps, are tests/test_cli_inputs.py's.)

| code | meaning |
|---|---|
| 0 | success / allowed / all tests passed |
| 1 | denied / a test failed / lint errors |
| 2 | bad input or usage: unreadable file, bad YAML, missing folder, bad flag |
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.paths import AIRFLOW_PODS, POLICIES, ROOT
from tests.support.pods import airflow_pod
from webhook.cli import main

EXECUTOR = AIRFLOW_PODS / "airflow3-executor.json"
KPO = AIRFLOW_PODS / "airflow3-kpo.json"
P = "airflow-pod-webhook.io/"


def pod_file(folder: Path, name: str, pod: dict) -> str:
    path = folder / name
    path.write_text(json.dumps(pod))
    return str(path)


def privileged(folder: Path) -> str:
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    return pod_file(folder, "privileged.json", pod)


def foreign(folder: Path) -> str:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["labels"] = {"app": "web"}
    return pod_file(folder, "foreign.json", pod)


def malformed(folder: Path) -> str:
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["containers"][0]["resources"] = ["cpu", "1"]
    return pod_file(folder, "malformed.json", pod)


def over_bound(folder: Path) -> str:
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["annotations"][P + "memory"] = "512Gi"
    return pod_file(folder, "over.json", pod)


def malformed_annotation(folder: Path) -> str:
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["annotations"][P + "memory"] = "lots"
    return pod_file(folder, "lots.json", pod)


def text(folder: Path, name: str, content: str) -> str:
    (folder / name).write_text(content)
    return str(folder / name)


def policy_copy(folder: Path, edit: Callable[[Path], None] | None = None) -> str:
    target = folder / "policies"
    shutil.copytree(POLICIES, target)
    if edit:
        edit(target)
    return str(target)


def lint_error(policies: Path) -> None:
    path = policies / "30-overrides.yaml"
    path.write_text(path.read_text().replace("spec.nodeSelector", "spec.nodeSelectr"))


def yaml_error(policies: Path) -> None:
    (policies / "99-broken.yaml").write_text("kind: [unclosed\n")


def failing_case(policies: Path) -> None:
    path = policies / "tests" / "executor.yaml"
    path.write_text(path.read_text().replace("allowed: true", "allowed: false", 1))


def broken_case(policies: Path) -> None:
    (policies / "tests" / "broken.yaml").write_text("spec: [unclosed\n")


def no_tests(policies: Path) -> None:
    shutil.rmtree(policies / "tests")


def certs(folder: Path) -> str:
    assert main(["certs", "--out", str(folder / "certs")]) == 0
    return str(folder / "certs")


# (command line builder, expected exit code): every command, every row of the table.
Argv = Callable[[Path], list[str]]
TABLE: dict[str, tuple[Argv, int]] = {
    "no command": (lambda d: [], 2),
    "help": (lambda d: ["--help"], 0),
    "unknown command": (lambda d: ["lint"], 2),
    # serve (success means it runs until stopped: the server tests cover that)
    "serve bad flag": (lambda d: ["serve", "--port", "https"], 2),
    "serve missing policy folder": (
        lambda d: ["serve", "--policies", str(d / "nope"), "--cert-dir", str(d)], 2),
    # certs
    "certs ok": (lambda d: ["certs", "--out", str(d / "c")], 0),
    "certs bad flag": (lambda d: ["certs", "--key-type", "dsa"], 2),
    "certs unwritable": (lambda d: ["certs", "--out", text(d, "file", "x") + "/sub"], 2),
    # manifests
    "manifests ok": (lambda d: ["manifests", "--cert-dir", certs(d)], 0),
    "manifests without certs": (lambda d: ["manifests", "--cert-dir", str(d / "none")], 2),
    "manifests bad flag": (lambda d: ["manifests", "--colour"], 2),
    # mutate
    "mutate allowed": (lambda d: ["mutate", str(EXECUTOR)], 0),
    "mutate foreign pod skipped": (lambda d: ["mutate", foreign(d)], 0),
    "mutate refused over a bound": (lambda d: ["mutate", over_bound(d)], 1),
    "mutate refused malformed annotation": (lambda d: ["mutate", malformed_annotation(d)], 1),
    "mutate missing file": (lambda d: ["mutate", str(d / "missing.json")], 2),
    "mutate bad yaml": (lambda d: ["mutate", text(d, "bad.yaml", "spec: [")], 2),
    "mutate malformed pod": (lambda d: ["mutate", malformed(d)], 2),
    "mutate missing policy folder": (
        lambda d: ["mutate", str(EXECUTOR), "--policies", str(d / "nope")], 2),
    "mutate broken policy folder": (
        lambda d: ["mutate", str(EXECUTOR), "--policies", policy_copy(d, lint_error)], 2),
    "mutate bad flag": (lambda d: ["mutate", "--pach", str(EXECUTOR)], 2),
    # validate
    # --after-mutation: as the validating hook sees the pod (a raw pod lacks the locked fields)
    "validate allowed": (lambda d: ["validate", "--after-mutation", str(EXECUTOR)], 0),
    "validate skipped": (lambda d: ["validate", foreign(d)], 0),
    "validate denied": (lambda d: ["validate", str(EXECUTOR), privileged(d)], 1),
    "validate restricted denied": (lambda d: ["validate", "--level", "restricted", str(KPO)], 1),
    "validate missing file": (lambda d: ["validate", str(d / "missing.json")], 2),
    "validate bad yaml": (lambda d: ["validate", text(d, "bad.yaml", "spec: [")], 2),
    "validate malformed pod": (lambda d: ["validate", malformed(d)], 2),
    "validate bad and denied": (lambda d: ["validate", privileged(d), str(d / "gone")], 2),
    "validate bad level": (lambda d: ["validate", "--level", "strict", str(EXECUTOR)], 2),
    "validate bad version": (
        lambda d: ["validate", "--level", "baseline", "--version", "v2", str(EXECUTOR)], 2),
    "validate missing policy folder": (
        lambda d: ["validate", str(EXECUTOR), "--policies", str(d / "nope")], 2),
    # audit (files here; the live cluster is tests/e2e's)
    "audit nothing denied": (lambda d: ["audit", str(EXECUTOR)], 0),
    "audit denied": (lambda d: ["audit", str(EXECUTOR), privileged(d)], 1),
    "audit missing file": (lambda d: ["audit", str(d / "missing.json")], 2),
    "audit bad yaml": (lambda d: ["audit", text(d, "bad.yaml", "spec: [")], 2),
    "audit bad flag": (lambda d: ["audit", "-o", "xml", str(EXECUTOR)], 2),
    # policy lint
    "lint clean": (lambda d: ["policy", "lint", str(POLICIES)], 0),
    "lint errors": (lambda d: ["policy", "lint", policy_copy(d, lint_error)], 1),
    "lint bad yaml": (lambda d: ["policy", "lint", policy_copy(d, yaml_error)], 2),
    "lint missing folder": (lambda d: ["policy", "lint", str(d / "nope")], 2),
    "lint empty folder": (lambda d: ["policy", "lint", str(d)], 2),
    "lint no folder given": (lambda d: ["policy", "lint"], 2),
    # policy test
    "test all passed": (lambda d: ["policy", "test", str(POLICIES)], 0),
    "test failed": (lambda d: ["policy", "test", policy_copy(d, failing_case)], 1),
    "test policy lint errors": (lambda d: ["policy", "test", policy_copy(d, lint_error)], 1),
    "test policy bad yaml": (lambda d: ["policy", "test", policy_copy(d, yaml_error)], 2),
    "test case bad yaml": (lambda d: ["policy", "test", policy_copy(d, broken_case)], 2),
    "test missing folder": (lambda d: ["policy", "test", str(d / "nope")], 2),
    "test no test cases": (lambda d: ["policy", "test", policy_copy(d, no_tests)], 2),
    "test bad flag": (lambda d: ["policy", "test", "--all", str(POLICIES)], 2),
}


@pytest.mark.parametrize("row", TABLE, ids=list(TABLE))
def test_exit_code_contract(row: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # --policies defaults to ./policies
    argv, expected = TABLE[row]
    assert main(argv(tmp_path)) == expected
    capsys.readouterr()


def test_python_dash_m_webhook_is_the_same_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "webhook", "--help"], capture_output=True,
                            text=True, check=True)
    assert "airflow-pod-webhook" in result.stdout and "serve" in result.stdout


def test_the_readme_documents_the_contract() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in ("| 0 | success / allowed / all tests passed |",
                 "| 1 | denied / a test failed / lint errors |",
                 "| 2 | bad input or usage: unreadable file, bad YAML, missing folder, bad flag |"):
        assert line in readme


# ---------------------------------------------------------------------------------------------
# A closed pipe: through real pipes, in a real process.

CLI = [sys.executable, "-m", "webhook"]


def run_into_closed_pipe(argv: list[str]) -> tuple[int, str]:
    """The command writing into a pipe whose reader is already gone: every write fails."""
    proc = subprocess.Popen([*CLI, *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=120), err


@pytest.mark.parametrize(("row", "expected"), [
    ("validate denied", 1), ("validate allowed", 0), ("validate bad yaml", 2),
    ("lint errors", 1), ("test failed", 1), ("mutate allowed", 0), ("manifests ok", 0),
    ("mutate refused over a bound", 1), ("lint clean", 0), ("audit denied", 1),
])
def test_a_closed_pipe_never_changes_the_exit_code(row: str, expected: int,
                                                   tmp_path: Path) -> None:
    argv, code = TABLE[row]
    assert code == expected
    status, err = run_into_closed_pipe(argv(tmp_path))
    assert status == expected, err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_validate_piped_into_head_still_exits_1_for_a_denial_found_after_head_left(
        tmp_path: Path) -> None:
    # 400 allowed pods fill far more than a pipe buffer after `head -1` exits; the denied pod
    # is judged last, after every write has failed.
    files = [str(EXECUTOR)] * 400 + [privileged(tmp_path)]
    script = (f"{' '.join(CLI)} validate --after-mutation {' '.join(files)} | head -1; "
              "echo \"status=${PIPESTATUS[0]}\"")
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    first, status = result.stdout.splitlines()
    assert first == f"{EXECUTOR}: allowed"
    assert status == "status=1", result.stderr
    assert "Traceback" not in result.stderr


def test_output_still_flushes_in_full_to_a_reader_that_stays(tmp_path: Path) -> None:
    files = [str(EXECUTOR)] * 50 + [privileged(tmp_path)]
    result = subprocess.run([*CLI, "validate", "--after-mutation", *files], cwd=ROOT,
                            capture_output=True,
                            text=True, timeout=300)
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert lines.count(f"{EXECUTOR}: allowed") == 50
    denied = lines.index(f"{tmp_path}/privileged.json: denied")
    assert lines[denied + 1].startswith("  pod ") and "(baseline: privileged)" in lines[denied + 1]
    assert lines[-1].startswith("  audit ")  # the last line, flushed at exit


# ---------------------------------------------------------------------------------------------
# Nothing reported "allowed" that was never checked


def test_a_pod_no_policy_selects_is_skipped_with_the_reason(tmp_path: Path, capsys) -> None:
    path = foreign(tmp_path)
    assert main(["validate", path]) == 0
    out = capsys.readouterr().out
    assert out == (f"{path}: skipped: not an Airflow pod (no kubernetes_executor=True with "
                   "airflow-worker, nor kubernetes_pod_operator=True label) and no policy's "
                   "labelSelector selects it\n")


def test_an_airflow_pod_no_validation_policy_selects_is_skipped(tmp_path: Path,
                                                                capsys) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.yaml").write_text(
        "apiVersion: airflow-pod-webhook.io/v1alpha1\nkind: ValidationPolicy\n"
        "metadata: {name: elsewhere}\nspec:\n  match: {namespaces: [other]}\n"
        "  podSecurity: {level: baseline}\n")
    assert main(["validate", str(EXECUTOR), "--policies", str(policies)]) == 0
    out = capsys.readouterr().out
    assert out == (f"{EXECUTOR}: skipped: no ValidationPolicy or Envelope selects this "
                   "executor pod in namespace data-airflow\n")
    # --level judges any pod: never skipped
    assert main(["validate", "--level", "baseline", str(EXECUTOR), "--policies",
                 str(policies)]) == 0
    assert capsys.readouterr().out.startswith(f"{EXECUTOR}: allowed\n")


def test_a_malformed_airflow_pod_is_an_error_not_allowed(tmp_path: Path, capsys) -> None:
    path = malformed(tmp_path)
    assert main(["validate", path]) == 2
    captured = capsys.readouterr()
    assert "allowed" not in captured.out
    assert captured.err == (f"{path}: error: malformed pod: spec.containers[base].resources: "
                            "must be an object, got list\n")


def test_mutate_says_skipped_for_a_pod_no_policy_selects_and_leaves_it_as_it_was(
        tmp_path: Path, capsys) -> None:
    import yaml

    path = foreign(tmp_path)
    assert main(["mutate", path]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("skipped: not an Airflow pod")
    assert yaml.safe_load(captured.out) == json.loads(Path(path).read_text())
