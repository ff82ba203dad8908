"""Session fixtures for the e2e suite: a real API server (envtest or kind), or a skip.

One control plane and one webhook serve every test in tests/e2e (starting them is most of the
suite's cost), and stop after the last of them rather than idle through the rest of the run
(package scope); tests that need a namespace of their own take `fresh_namespace`, since without
a controller-manager a deleted namespace never finishes terminating and its name stays taken.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.harness import E2EEnvironment, LocalWebhook, choose_backend
from tests.e2e.namespaces import new_namespace, own_namespace, token_core
from tests.e2e.real_airflow import (
    VERSIONS,
    CapturedWrites,
    RealAirflow,
    airflow_writes,
    grant_pod_launcher,
)
from tests.e2e.scenarios import e2e_policies
from webhook.policy.load import load_policy_dir
from webhook.policy.model import PolicySet

_RUN: dict[str, object] = {}  # backend and timings for the terminal summary
_E2E_TESTS: set[str] = set()  # node ids of the tests marked e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _E2E_TESTS.update(item.nodeid for item in items if item.get_closest_marker("e2e"))


@pytest.fixture(scope="package")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EEnvironment]:
    backend, reason = choose_backend()
    _RUN["backend"] = reason
    if backend is None:
        pytest.skip(reason)
    env = E2EEnvironment(backend, tmp_path_factory.mktemp(f"e2e-{backend}"))
    started = time.monotonic()
    try:
        env.start()
        _RUN["startup"] = time.monotonic() - started
        yield env
    finally:
        env.stop()


@pytest.fixture
def token_client(e2e: E2EEnvironment) -> Callable[[str, str], Any]:
    """token_core(namespace, account): a client holding that ServiceAccount's own token."""
    return lambda namespace, account: token_core(e2e, namespace, account)


@pytest.fixture(scope="package")
def namespace(e2e: E2EEnvironment) -> Iterator[str]:
    """One namespace shared by the tests that only create and delete their own pods."""
    with own_namespace(e2e) as name:
        yield name


@pytest.fixture
def fresh_namespace(e2e: E2EEnvironment) -> Iterator[str]:
    """A namespace of this test's own."""
    with own_namespace(e2e) as name:
        yield name


@pytest.fixture
def namespace_factory(e2e: E2EEnvironment) -> Iterator[Callable[[str], str]]:
    """Make namespaces named after a prefix, deleted after the test."""
    made: list[str] = []

    def make(prefix: str = "airflow-e2e") -> str:
        made.append(new_namespace(e2e, prefix))
        return made[-1]

    yield make
    for name in made:
        e2e.delete_namespace(name)


@pytest.fixture(scope="package")
def e2e_policy_set(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    """The policy set the e2e webhook serves (e2e_policies), compiled offline."""
    result = load_policy_dir(e2e_policies(tmp_path_factory.mktemp("e2e-policies") / "p"))
    assert result.policy_set is not None, result.errors
    return result.policy_set


@pytest.fixture
def local_webhook(e2e: E2EEnvironment) -> LocalWebhook:
    """The webhook process the suite started (envtest); in kind it runs in a pod instead."""
    if e2e.webhook is None:
        pytest.skip("needs the local webhook process (envtest backend)")
    return e2e.webhook


@pytest.fixture(scope="session", params=VERSIONS)
def real_airflow(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> RealAirflow:
    """Each supported Airflow, its venv built once (tools/airflow_venv.py, cached under
    AIRFLOW_VENV_DIR or .cache/airflow-venvs); skipped only when it cannot be built."""
    version = request.param
    try:
        return RealAirflow(version, tmp_path_factory.mktemp(f"airflow-{version}"))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"cannot build the Airflow {version} venv with tools/airflow_venv.py: {exc}")


@pytest.fixture(scope="package")
def airflow_namespace(e2e: E2EEnvironment, real_airflow: RealAirflow) -> Iterator[str]:
    """A namespace per Airflow version with the Helm chart's pod-launcher Role bound to its
    airflow-scheduler and airflow-worker ServiceAccounts."""
    with own_namespace(e2e) as name:
        grant_pod_launcher(e2e.api_client(), name)
        yield name


@pytest.fixture(scope="package")
def live_writes(e2e: E2EEnvironment, real_airflow: RealAirflow, airflow_namespace: str,
                tmp_path_factory: pytest.TempPathFactory) -> CapturedWrites:
    """Real Airflow's writes to live pods, run once per version: the executor launches pods,
    a restarted scheduler adopts, finishes, revokes and deletes them; KPO cleans up its own."""
    return airflow_writes(real_airflow, e2e.kubeconfig, e2e.api_client(), airflow_namespace,
                          tmp_path_factory.mktemp(f"writes-{real_airflow.version}"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line in every run's output saying whether the e2e suite ran, and against what."""
    reports = [r for key in ("passed", "failed", "skipped", "error")
               for r in terminalreporter.stats.get(key, [])
               if isinstance(r, pytest.TestReport) and r.nodeid in _E2E_TESTS]
    if not reports:
        return
    passed = sum(1 for r in reports if r.when == "call" and r.outcome == "passed")
    failed = sum(1 for r in reports if r.outcome == "failed")
    skipped = sum(1 for r in reports if r.outcome == "skipped")
    startup = _RUN.get("startup")
    terminalreporter.write_line(
        f"e2e against a real API server: {_RUN.get('backend', 'not started')}"
        + (f" (up in {startup:.1f}s)" if isinstance(startup, float) else "")
        + f": {passed} passed, {failed} failed, {skipped} skipped")
