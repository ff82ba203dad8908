"""The webhook with mutual TLS, behind a kube-apiserver that presents its client certificate
(an AdmissionConfiguration naming a kubeconfig for the webhook) and writes an audit log.

- kube-apiserver's calls succeed: pods are mutated and judged as usual;
- a review posted straight to the webhook without the client certificate is refused, logged
  as unauthenticated and never counted as a decision;
- each decision-log line joins the API server's audit event of the same request by uid
  (the webhook answers with the audit annotation `review-uid`).

Its own control plane (started with --admission-control-config-file, --audit-policy-file and
--audit-log-path) and webhook (serve --client-ca): envtest only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import E2EEnvironment, LocalWebhook, api_message, choose_backend, e2e_pod
from tests.e2e.namespaces import own_namespace
from tests.e2e.scenarios import APPLIED, scheduler_username
from tests.support.admission_reviews import pod_review
from tests.support.pods import airflow_pod
from tests.support.server_process import post
from webhook.cluster.certs import write_apiserver_client
from webhook.cluster.registration import MUTATING_WEBHOOK, VALIDATING_WEBHOOK

pytestmark = pytest.mark.e2e

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "resources": [{"group": "", "resources": ["pods"]}]},
              {"level": "None"}]}


class Authenticated:
    def __init__(self, env: E2EEnvironment, workdir: Path) -> None:
        self.env, self.workdir = env, workdir
        self.client_dir = workdir / "apiserver-client"
        self.audit_log = workdir / "audit.log"

    def configure(self, webhook: LocalWebhook) -> tuple[list[str], list[str]]:
        """Before anything starts: kube-apiserver's client cert for the webhook's address
        (a `url` registration on a port other than 443 is named host:port), the audit
        policy, and the flags that use them."""
        client = write_apiserver_client(self.client_dir, [f"127.0.0.1:{webhook.port}"],
                                        str(self.client_dir / "admission-kubeconfig.yaml"))
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        return ([f"--admission-control-config-file={client.admission_configuration}",
                 f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}"],
                ["--client-ca", str(client.client_ca)])

    def audit_events(self, pod_name: str) -> list[dict]:
        events = [json.loads(line) for line in self.audit_log.read_text().splitlines()]
        return [e for e in events if e.get("verb") == "create"
                and (e.get("objectRef") or {}).get("name") == pod_name
                and e.get("stage") == "ResponseComplete"]


@pytest.fixture(scope="module")
def authenticated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authenticated]:
    backend, reason = choose_backend()
    if backend != "envtest":
        pytest.skip(f"needs envtest's kube-apiserver with our flags ({reason})")
    workdir = tmp_path_factory.mktemp("e2e-mtls")
    holder: dict[str, Authenticated] = {}
    env = E2EEnvironment("envtest", workdir,
                         configure=lambda webhook: holder["a"].configure(webhook))
    holder["a"] = Authenticated(env, workdir)
    try:
        env.start()
        yield holder["a"]
    finally:
        env.stop()


@pytest.fixture(scope="module")
def namespace(authenticated: Authenticated) -> Iterator[str]:
    # own_namespace waits until a probe pod is mutated and a privileged one denied by us:
    # kube-apiserver's calls, with its client certificate, already succeed there.
    with own_namespace(authenticated.env, "airflow-mtls") as name:
        yield name


def test_kube_apiservers_calls_succeed_with_its_client_certificate(
        authenticated: Authenticated, namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException

    env = authenticated.env
    created = env.create_pod(e2e_pod("executor-template-and-profile", namespace, "mtls-ok"),
                             scheduler_username(namespace))
    assert APPLIED in created["metadata"]["annotations"]
    with pytest.raises(ApiException) as raised:
        env.create_pod(e2e_pod("privileged-pod", namespace, "mtls-denied"),
                       scheduler_username(namespace))
    assert f'admission webhook "{VALIDATING_WEBHOOK}" denied' in api_message(raised.value)


def test_a_review_without_the_client_certificate_is_refused(
        authenticated: Authenticated, namespace: str) -> None:
    webhook = authenticated.env.webhook
    assert webhook is not None
    server = webhook.server
    status, body, _ = post(server.connect(), "/mutate", pod_review(
        airflow_pod("airflow3-executor"), uid="forged-review", namespace=namespace))
    assert (status, body) == (401, {"error": "a client certificate signed by the webhook's "
                                             "client CA is required"})
    assert server.metric("airflow_pod_webhook_unauthenticated_requests_total",
                         hook="mutate") >= 1
    # Never a decision (a count of lines would race the kube-apiserver's own calls still
    # being logged): the forged request's uid is nowhere in the log.
    assert "forged-review" not in server.log()
    assert any('"event":"unauthenticated"' in line for line in server.log().splitlines())


def test_a_decision_log_line_joins_the_audit_event_of_its_request_by_uid(
        authenticated: Authenticated, namespace: str) -> None:
    env = authenticated.env
    assert env.webhook is not None
    user = scheduler_username(namespace)
    env.create_pod(e2e_pod("executor-template-and-profile", namespace, "audit-join"), user)
    lines = [line for line in env.webhook.server.wait_for_decisions(1)
             if line["pod"] == "audit-join"]
    assert sorted(line["hook"] for line in lines) == ["mutate", "validate"]
    [event] = authenticated.audit_events("audit-join")
    annotations = event["annotations"]
    for line in lines:
        webhook_name = MUTATING_WEBHOOK if line["hook"] == "mutate" else VALIDATING_WEBHOOK
        assert annotations[f"{webhook_name}/review-uid"] == line["uid"]
        assert line["username"] == event["impersonatedUser"]["username"] == user
        assert line["namespace"] == event["objectRef"]["namespace"] == namespace
        assert (line["operation"], line["dry_run"]) == ("CREATE", False)
        assert line["time"][:10] == event["stageTimestamp"][:10]
