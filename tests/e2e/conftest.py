"""Session fixtures for the e2e suite: a real API server (envtest or kind), or a skip."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.harness import E2EEnvironment, choose_backend


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EEnvironment]:
    backend, reason = choose_backend()
    if backend is None:
        pytest.skip(reason)
    env = E2EEnvironment(backend, tmp_path_factory.mktemp(f"e2e-{backend}"))
    try:
        env.start()
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def namespace(e2e: E2EEnvironment) -> Iterator[str]:
    name = f"airflow-e2e-{uuid.uuid4().hex[:6]}"
    try:
        e2e.create_namespace(name)
        e2e.wait_until_effective(name)
        yield name
    finally:
        e2e.delete_namespace(name)
