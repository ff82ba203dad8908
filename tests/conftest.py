"""Fixtures shared by every test module. Fixtures only: helpers that are not fixtures live in
tests/support/ (docs/testing.md, "Where a test goes")."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.support.paths import POLICIES
from tests.support.policies import bundled_policies
from webhook.cli import main
from webhook.policy.model import PolicySet
from webhook.policy.store import PolicyStore
from webhook.serving.app import create_app


@pytest.fixture(scope="session")
def bundled() -> PolicySet:
    """The bundled policies (policies/), loaded once a session."""
    return bundled_policies()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """`airflow-pod-webhook ARGV` run in this process: (exit code, stdout, stderr)."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        code = main(argv)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def webhook_client() -> FlaskClient:
    """The server's app over the bundled policies: what the offline commands must agree with."""
    store = PolicyStore(POLICIES)
    store.reload_if_changed()
    return create_app(store).test_client()
