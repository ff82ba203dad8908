"""Exemptions through a real kube-apiserver: the bundled DAG exemption (namespace
airflow-legacy + DAG nfs_export), a namespace exemption, and one past its expiry date that no
longer waives. The pod is the hostPath pod of the bundled policy tests."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import POLICIES
from tests.e2e.harness import E2EEnvironment, LocalWebhook, api_message
from tests.e2e.scenarios import denial_prefix, scheduler_username
from tests.server_process import policy_files_of
from webhook.registration import VALIDATING_WEBHOOK

pytestmark = pytest.mark.e2e
LEGACY = "airflow-legacy"  # policies/60-exemptions.yaml
HOST_PATH_DENIAL = "(baseline: hostPathVolumes)"


def host_path_pod(namespace: str, dag_id: str = "nfs_export") -> dict:
    pod = json.loads((POLICIES / "tests" / "pods" / "legacy-nfs-export-host-path.json")
                     .read_text())
    meta = pod["metadata"]
    meta["namespace"] = namespace
    meta["labels"]["dag_id"] = meta["annotations"]["dag_id"] = dag_id
    return pod


def exemption(name: str, namespace: str, expires: dt.date) -> str:
    return f"""\
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Exemption
metadata:
  name: {name}
spec:
  reason: e2e {name}
  expires: "{expires.isoformat()}"
  match:
    namespaces: [{namespace}]
  rules:
    - "baseline: hostPathVolumes"
    - "restricted: restrictedVolumes"
"""


@pytest.fixture
def with_exemptions(local_webhook: LocalWebhook) -> Iterator[Callable[[str], str]]:
    bundled = policy_files_of(local_webhook.policy_mount.root)

    def serve(text: str) -> str:
        return local_webhook.serve_policies({**bundled, "61-e2e-exemptions.yaml": text.encode()})

    yield serve
    local_webhook.serve_policies(bundled)


def test_exemptions_waive_until_they_expire(
        e2e: E2EEnvironment, namespace_factory: Callable[[str], str],
        with_exemptions: Callable[[str], str]) -> None:
    from kubernetes.client.exceptions import ApiException

    current, expired = namespace_factory("exempt-now"), namespace_factory("exempt-was")
    today = dt.datetime.now(dt.timezone.utc).date()
    with_exemptions(exemption("e2e-current", current, today + dt.timedelta(days=30))
                    + "---\n" + exemption("e2e-expired", expired, today - dt.timedelta(days=1)))
    e2e.ensure_namespace(LEGACY)

    for where, dag, exempted_by in ((LEGACY, "nfs_export", "legacy-nfs-export"),
                                    (current, "nfs_export", "e2e-current")):
        created, warnings = e2e.create_pod_warned(host_path_pod(where, dag),
                                                  scheduler_username(where))
        e2e.delete_pod(where, created["metadata"]["name"])
        assert f"exempted by {exempted_by}" in warnings, warnings
        assert any("hostPath" in v for v in created["spec"]["volumes"])

    for where, dag in ((LEGACY, "other_dag"), (expired, "nfs_export")):
        with pytest.raises(ApiException) as refused:
            e2e.create_pod(host_path_pod(where, dag), scheduler_username(where))
        message = api_message(refused.value)
        assert refused.value.status == 403, message
        assert message.startswith(denial_prefix(VALIDATING_WEBHOOK)), message
        assert HOST_PATH_DENIAL in message
