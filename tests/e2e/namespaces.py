"""Namespaces of their own, and clients that act as a ServiceAccount, for e2e tests and the e2e
fixtures (tests/e2e/conftest.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

from tests.e2e.harness import E2EEnvironment


def new_namespace(e2e: E2EEnvironment, prefix: str = "airflow-e2e") -> str:
    """A namespace no earlier test used, set up for the scheduler and with the webhooks
    effective in it (RBAC reaches the authorizer through informers too)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    e2e.create_namespace(name)
    e2e.wait_until_effective(name)
    return name


@contextlib.contextmanager
def own_namespace(e2e: E2EEnvironment, prefix: str = "airflow-e2e") -> Iterator[str]:
    """`new_namespace`, deleted when the block ends."""
    name = new_namespace(e2e, prefix)
    try:
        yield name
    finally:
        e2e.delete_namespace(name)


def token_core(e2e: E2EEnvironment, namespace: str, account: str) -> Any:
    """A CoreV1Api authenticated as the ServiceAccount itself, by a token TokenRequest
    issued (what a task finds mounted in its pod), not by impersonation."""
    from kubernetes import client, config

    issued = e2e.core().create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 3600}})
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(e2e.kubeconfig),
                            client_configuration=configuration)
    configuration.cert_file = configuration.key_file = None
    configuration.api_key = {"authorization": issued.status.token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.CoreV1Api(client.ApiClient(configuration))
