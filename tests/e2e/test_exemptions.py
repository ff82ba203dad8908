"""Exemptions through a real kube-apiserver: a DAG exemption (one DAG in one namespace), a
namespace exemption, and one past its expiry date that no longer waives, added to the served
policies as a policy push would. The pod is the hostPath pod of the bundled policy tests
(DAG nfs_export), which the bundled `legacy-nfs-export` exemption waives in its own namespace."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.harness import E2EEnvironment, LocalWebhook, api_message
from tests.e2e.scenarios import denial_prefix, scheduler_username
from tests.support.paths import POLICIES
from tests.support.server_process import policy_files_of
from webhook.cluster.registration import VALIDATING_WEBHOOK

pytestmark = pytest.mark.e2e
HOST_PATH_DENIAL = "(baseline: hostPathVolumes)"


def host_path_pod(namespace: str, dag_id: str = "nfs_export") -> dict:
    pod = json.loads((POLICIES / "tests" / "pods" / "legacy-nfs-export-host-path.json")
                     .read_text())
    meta = pod["metadata"]
    meta["namespace"] = namespace
    meta["labels"]["dag_id"] = meta["annotations"]["dag_id"] = dag_id
    return pod


def exemption(name: str, namespace: str, expires: dt.date, dag_id: str | None = None) -> str:
    dags = f"\n    dagIds: [{dag_id}]" if dag_id else ""
    return f"""\
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Exemption
metadata:
  name: {name}
spec:
  reason: e2e {name}
  expires: "{expires.isoformat()}"
  match:
    namespaces: [{namespace}]{dags}
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

    # airflow-e2e-*: the namespaces whose scheduler the e2e Settings trust (exemptions are
    # only for trusted creators).
    dag_ns, current, expired = (namespace_factory(f"airflow-e2e-{what}")
                                for what in ("dag", "now", "was"))
    today = dt.datetime.now(dt.timezone.utc).date()
    later, yesterday = today + dt.timedelta(days=30), today - dt.timedelta(days=1)
    with_exemptions("---\n".join((exemption("e2e-dag", dag_ns, later, "nfs_export"),
                                   exemption("e2e-namespace", current, later),
                                   exemption("e2e-expired", expired, yesterday))))

    for where, dag, exempted_by in ((dag_ns, "nfs_export", "e2e-dag"),
                                    (current, "other_dag", "e2e-namespace")):
        created, warnings = e2e.create_pod_warned(host_path_pod(where, dag),
                                                  scheduler_username(where))
        e2e.delete_pod(where, created["metadata"]["name"])
        assert f"exempted by {exempted_by}" in warnings, warnings
        assert any("hostPath" in v for v in created["spec"]["volumes"])

    for where, dag in ((dag_ns, "other_dag"), (expired, "nfs_export")):
        with pytest.raises(ApiException) as refused:
            e2e.create_pod(host_path_pod(where, dag), scheduler_username(where))
        message = api_message(refused.value)
        assert refused.value.status == 403, message
        assert message.startswith(denial_prefix(VALIDATING_WEBHOOK)), message
        assert HOST_PATH_DENIAL in message
