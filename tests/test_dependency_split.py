"""`pip install airflow-pod-webhook` must fit into any Airflow image: DAG code's helper and the
offline commands import nothing that only the [server] extra installs (Airflow 2 pins Flask and
Werkzeug below the versions the server needs), and server commands say which extra they need.

Each check runs in a fresh interpreter whose import system refuses the server-only packages,
as if they were not installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

from tests.support.paths import ROOT as REPO

POD = REPO / "tests" / "fixtures" / "airflow-pods" / "airflow2-executor.json"
# Only [server] installs these. The kubernetes client is in [server] and [cluster], and Airflow
# images with the cncf.kubernetes provider (KubernetesExecutor, KPO) already have it.
SERVER_ONLY = ("flask", "werkzeug", "gunicorn", "prometheus_client", "orjson", "cryptography")
KUBERNETES = ("kubernetes",)

BLOCKER = """
import importlib.abc, os, sys
BLOCKED = tuple(os.environ["BLOCKED_MODULES"].split(","))
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
def server_modules_loaded():
    return sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
"""


def run_without_server_deps(code: str, *args: str,
                            blocked: tuple[str, ...] = SERVER_ONLY + KUBERNETES,
                            ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "BLOCKED_MODULES": ",".join(blocked)})


def test_the_blocker_really_blocks() -> None:
    # Without this, every test below would pass even if the blocker did nothing.
    result = run_without_server_deps("import flask")
    assert result.returncode == 1 and "No module named 'flask'" in result.stderr


def test_dag_helper_imports_and_runs_without_server_packages() -> None:
    result = run_without_server_deps("""
        import json
        from webhook.dag_annotations import override_annotations
        annotations = override_annotations(
            pod={"spec": {"containers": [{"name": "base", "env": [{"name": "M", "value": "1"}]}]}},
            profiles=["highmem"], memory="8Gi")
        print(json.dumps({"annotations": annotations, "loaded": server_modules_loaded()}))
    """)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["loaded"] == []
    assert out["annotations"] == {
        "airflow-pod-webhook.io/pod-override":
            '{"spec":{"containers":[{"env":[{"name":"M","value":"1"}],"name":"base"}]}}',
        "airflow-pod-webhook.io/profiles": "highmem",
        "airflow-pod-webhook.io/memory": "8Gi",
    }


@pytest.mark.parametrize("argv, expected_code", [
    (["policy", "lint", "policies"], 0),
    (["policy", "test", "policies"], 0),
    (["mutate", str(POD), "--namespace", "data-airflow"], 0),
    # 1: judged and denied; a pod the mutating hook never saw lacks the locked seccomp profile
    # (envelope: lockedFields).
    (["validate", str(POD), "--namespace", "data-airflow"], 1),
    (["manifests", "--cert-dir", "tests/fixtures/no-such-dir"], 2),
])
def test_offline_commands_run_without_server_packages(argv: list[str], expected_code: int) -> None:
    # The kubernetes client is there, as in an Airflow image with the cncf.kubernetes provider.
    result = run_without_server_deps("""
        import sys
        from webhook.cli import main
        code = main(sys.argv[1:])
        assert server_modules_loaded() == [], server_modules_loaded()
        sys.exit(code)
    """, *argv, blocked=SERVER_ONLY)
    assert result.returncode == expected_code, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv, command", [
    (["policy", "test", "policies"], "policy test"),
    (["validate", str(POD)], "validate"),
])
def test_offline_commands_without_the_kubernetes_client_name_the_extra(
    argv: list[str], command: str
) -> None:
    # Quantities ("4Gi") are parsed by the kubernetes client's own code (webhook/kube/quantity.py).
    result = run_without_server_deps("""
        import sys
        from webhook.cli import main
        sys.exit(main(sys.argv[1:]))
    """, *argv)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: `{command}` needs the kubernetes client: pip install "
        "'airflow-pod-webhook[cluster]' (or [server], which includes it)"]


@pytest.mark.parametrize("argv, module, extra", [
    (["serve", "--cert-dir", "{tmp}"], "cryptography", "server"),
    (["certs", "--out", "{tmp}"], "cryptography", "server"),
])
def test_server_commands_print_the_extra_instead_of_a_traceback(
    tmp_path: Path, argv: list[str], module: str, extra: str
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    result = run_without_server_deps("""
        import sys
        from webhook.cli import main
        sys.exit(main(sys.argv[1:]))
    """, *argv)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line == (f"error: `{argv[0]}` needs {module}, which only the server extra installs: "
                    f"pip install 'airflow-pod-webhook[{extra}]'")


def test_serve_with_certs_but_without_flask_names_the_extra(tmp_path: Path) -> None:
    # cryptography present (e.g. from another package), the web stack absent.
    from webhook.cluster.certs import write_certs

    write_certs(tmp_path, "airflow-pod-webhook", "airflow-pod-webhook")
    code = """
        import sys
        from webhook.cli import main
        sys.exit(main(sys.argv[1:]))
    """
    blocked = tuple(m for m in SERVER_ONLY if m != "cryptography")
    result = run_without_server_deps(code, "serve", "--cert-dir", str(tmp_path), "--port", "1",
                                     blocked=blocked)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: `serve` needs gunicorn, which only the server extra installs: "
        "pip install 'airflow-pod-webhook[server]'"]


def test_base_dependencies_exclude_the_server_packages() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower().replace("_", "-")
             for d in project["dependencies"]}
    assert names == {"pyyaml", "jsonschema"}
    server = {d.split(">")[0].strip().lower().replace("_", "-")
              for d in project["optional-dependencies"]["server"]}
    assert {"flask", "gunicorn", "prometheus-client", "orjson", "cryptography",
            "kubernetes"} <= server
    assert project["license"] == "Apache-2.0"


def test_dag_helper_checks_its_arguments_without_the_kubernetes_client() -> None:
    # The quantity grammar and the Pod model need no client: a DAG without it still fails at
    # parse time on "8GB", not later in the cluster.
    result = run_without_server_deps("""
        from webhook.dag_annotations import override_annotations
        for kwargs in ({"memory": "8GB"}, {"pod": {"spec": {"containerz": []}}}):
            try:
                override_annotations(**kwargs)
            except ValueError as exc:
                print(exc)
        print(server_modules_loaded())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "memory: '8GB' is not a Kubernetes quantity (e.g. 4Gi); did you mean '8G' or '8Gi'?",
        "pod: spec.containerz: is not a field of PodSpec; did you mean 'containers' or "
        "'initContainers'?",
        "[]",
    ]


def test_the_offline_validate_reads_json_within_the_servers_limits_without_orjson(
        tmp_path: Path) -> None:
    # The base install parses with the stdlib, held to orjson's 1024 levels and message prefix.
    deep = tmp_path / "deep.json"
    deep.write_bytes(b'{"kind": "Pod", "spec": ' + b"[" * 1100 + b"]" * 1100 + b"}")
    result = run_without_server_deps("""
        import sys
        from webhook.cli import main
        sys.exit(main(sys.argv[1:]))
    """, "validate", str(deep), blocked=SERVER_ONLY)
    assert result.returncode == 2
    assert "body is not valid JSON: depth limit exceeded" in result.stderr
    assert "Traceback" not in result.stderr


def test_audit_runs_with_what_the_cluster_extra_installs() -> None:
    # [cluster] = kubernetes + orjson: the README's route for `audit` from a laptop or CI.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    cluster = {d.split(">")[0].strip() for d in project["optional-dependencies"]["cluster"]}
    assert cluster == {"kubernetes", "orjson"}
    result = run_without_server_deps("""
        import sys
        from webhook.cli import main
        code = main(sys.argv[1:])
        assert server_modules_loaded() == [], server_modules_loaded()
        sys.exit(code)
    """, "audit", "--policies", "policies", str(POD), "--namespace", "data-airflow",
        blocked=tuple(m for m in SERVER_ONLY if m != "orjson"))
    assert result.returncode == 0, result.stderr
    assert "1 pods: 1 allow, 0 deny" in result.stdout


def test_the_airflow_cluster_policy_imports_without_server_packages() -> None:
    # airflow_local_settings.py imports it in every scheduler, DAG processor and worker;
    # the kubernetes client is there wherever the cncf.kubernetes provider is.
    result = run_without_server_deps("""
        from webhook.airflow_policy import task_policy
        assert callable(task_policy)
        print(server_modules_loaded())
    """, blocked=SERVER_ONLY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
