"""The real server, as kube-apiserver calls it: gunicorn, TLS with generated certs, keep-alive."""

from __future__ import annotations

import base64
import copy
import json
import socket
import ssl
import time
from pathlib import Path

import jsonpatch
import pytest

from tests.support.admission_reviews import pod_review as review
from tests.support.paths import POLICIES
from tests.support.pods import admitted_pod, airflow_pod
from tests.support.server_process import (
    SVC_NAME,
    PinnedHTTPSConnection,
    RunningServer,
    post,
    running_server,
)
from webhook.cluster.certs import write_apiserver_client, write_certs
from webhook.serving.server import ReloadingTLSContext


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    with running_server(tmp_path_factory.mktemp("serve"), POLICIES) as running:
        yield running


def test_dev_certs_were_generated_and_verify_for_the_service_name(server: RunningServer) -> None:
    assert {p.name for p in server.cert_dir.iterdir()} >= {"ca.crt", "tls.crt", "tls.key"}
    conn = server.connect("airflow-pod-webhook.airflow-pod-webhook.svc")
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert conn.sock.selected_alpn_protocol() in (None, "http/1.1")


def test_cert_is_refused_for_a_name_it_does_not_cover(server: RunningServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        server.connect("webhook.other-namespace.svc").request("GET", "/healthz")


def test_reviews_over_one_kept_alive_connection(server: RunningServer) -> None:
    conn = server.connect()
    executor, kpo = airflow_pod("airflow3-executor"), airflow_pod("airflow3-kpo-xcom")
    foreign = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx"},
               "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}

    status, body, response = post(conn, "/mutate?timeout=10s", review(executor, uid="u-1"))
    sock = conn.sock
    assert status == 200 and response.getheader("Content-Type") == "application/json"
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    answer = body["response"]
    assert answer["uid"] == "u-1" and answer["allowed"] is True
    assert answer["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(answer["patch"]))
    mutated = jsonpatch.apply_patch(executor, patch)
    assert mutated["spec"]["securityContext"]["runAsNonRoot"] is True
    assert answer["auditAnnotations"]["policy-revision"]

    status, body, _ = post(conn, "/validate?timeout=10s", review(mutated, uid="u-2"))
    assert conn.sock is sock, "the server closed a kept-alive connection"
    assert body["response"]["uid"] == "u-2" and body["response"]["allowed"] is True
    # the bundled set agrees with itself: its own mutation leaves nothing to warn about
    assert body["response"]["auditAnnotations"]["decision"] == "allow"
    assert "mode" not in body["response"]["auditAnnotations"]
    assert "warnings" not in body["response"]

    status, body, _ = post(conn, "/mutate", review(kpo, uid="u-3"))
    sidecar = jsonpatch.apply_patch(kpo, json.loads(base64.b64decode(body["response"]["patch"])))
    assert sidecar["spec"]["containers"][1]["securityContext"]["runAsUser"] == 65534

    # A pod without Airflow's labels from an account that is not Airflow's: left alone.
    deployer = "system:serviceaccount:default:deployer"
    status, body, _ = post(conn, "/mutate", review(foreign, uid="u-4", namespace="default",
                                                   username=deployer))
    assert body["response"] == {"uid": "u-4", "allowed": True,
                                "auditAnnotations": {"review-uid": "u-4"}}
    status, body, _ = post(conn, "/validate", review(foreign, uid="u-5", namespace="default",
                                                     username=deployer))
    assert body["response"] == {"uid": "u-5", "allowed": True,
                                "auditAnnotations": {"review-uid": "u-5"}}
    assert conn.sock is sock


def test_privileged_pod_denied_with_a_message_for_the_dag_author(server: RunningServer) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    status, body, _ = post(server.connect(), "/validate", review(pod, uid="p-1"))
    answer = body["response"]
    assert status == 200 and answer["allowed"] is False and answer["uid"] == "p-1"
    assert answer["status"]["code"] == 403
    assert ("spec.containers[base].securityContext.privileged must be unset or false, got true "
            "(baseline: privileged)") in answer["status"]["message"]


def test_updates_are_judged_on_what_they_change_and_never_mutated(server: RunningServer
                                                                   ) -> None:
    conn = server.connect()
    old = admitted_pod("airflow3-executor")
    old["spec"]["hostNetwork"] = True  # admitted under an older policy set
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"]["airflow_executor_done"] = "True"
    _, body, _ = post(conn, "/validate", review(relabelled, operation="UPDATE",
                                                old_object=old))
    assert body["response"]["allowed"] is True and body["response"]["uid"] == "7f0c"
    tolerant = copy.deepcopy(old)
    tolerant["spec"]["tolerations"] = [{"operator": "Exists"}]
    _, body, _ = post(conn, "/validate", review(tolerant, operation="UPDATE", old_object=old))
    assert body["response"]["allowed"] is False
    assert body["response"]["status"]["message"].endswith(
        'spec.tolerations[0] must name a taint key: a key-less toleration tolerates every '
        'taint, got {"operator":"Exists"} (envelope: placement)')
    _, body, _ = post(conn, "/mutate", review(tolerant, operation="UPDATE", old_object=old))
    assert body["response"] == {"uid": "7f0c", "allowed": True,
                                "auditAnnotations": {"review-uid": "7f0c"}}


def test_the_webhooks_own_namespace_is_refused(server: RunningServer) -> None:
    conn = server.connect()
    _, body, _ = post(conn, "/refuse", review(airflow_pod("airflow3-kpo"),
                                              namespace="airflow-pod-webhook"))
    assert body["response"]["allowed"] is False
    assert body["response"]["status"]["message"] == (
        "pod export-csv-c9rtvisr: system:serviceaccount:airflow:airflow-scheduler is one of "
        "Airflow's accounts, and no create pod by Airflow's accounts is allowed in namespace "
        "airflow-pod-webhook, the airflow-pod-webhook's own (a pod there could mount the "
        "webhook's TLS Secret or join its Service) (airflow: webhookNamespace)")


def test_a_dry_run_create_is_answered_as_the_real_create(server: RunningServer) -> None:
    """`kubectl create --dry-run=server` previews admission: same patch, same denial."""
    conn = server.connect()
    for hook in ("/mutate", "/validate"):
        for pod in (airflow_pod("airflow3-executor"),
                    {**airflow_pod("airflow3-executor"), "spec": {
                        **airflow_pod("airflow3-executor")["spec"], "hostNetwork": True}}):
            _, real, _ = post(conn, hook, review(pod))
            _, dry, _ = post(conn, hook, review(pod, dry_run=True))
            assert dry["response"] == real["response"]
    _, body, _ = post(conn, "/validate", review(pod, dry_run=True))
    assert body["response"]["allowed"] is False
    _, body, _ = post(conn, "/mutate", review(airflow_pod("airflow3-executor"), dry_run=True))
    assert body["response"]["patch"]


@pytest.mark.parametrize(("path", "body", "content_type", "status", "error"), [
    ("/mutate", b"{not json", "application/json", 400, "body is not valid JSON"),
    ("/mutate", {"kind": "Pod"}, "application/json", 400, "kind: must be AdmissionReview"),
    ("/validate", {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "request": {"kind": {"kind": "Pod"}, "operation": "CREATE"}},
     "application/json", 400, "request.uid: must be a non-empty string"),
    ("/mutate", {"x": 1}, "text/plain", 415, "Content-Type must be application/json"),
    ("/mutate", b"x" * (3 * 1024 * 1024 + 1), "application/json", 413, "larger than 3145728"),
    ("/nope", {}, "application/json", 404, "not found"),
    ("/mutate?timeout=soon", {}, "application/json", 400, "is not a duration"),
])
def test_bad_input_gets_a_clear_4xx(server: RunningServer, path: str, body: object,
                                    content_type: str, status: int, error: str) -> None:
    got, payload, _ = post(server.connect(), path, body, content_type)
    assert got == status
    assert error.lower() in payload["error"].lower()


def test_bad_review_that_names_a_uid_gets_an_admission_denial(server: RunningServer) -> None:
    bad = review(airflow_pod("airflow3-kpo"), uid="b-1")
    bad["request"]["operation"] = "EXPLODE"
    status, body, _ = post(server.connect(), "/mutate", bad)
    assert status == 200
    assert body["response"]["allowed"] is False and body["response"]["uid"] == "b-1"
    assert body["response"]["status"]["code"] == 400
    assert "request.operation" in body["response"]["status"]["message"]


def test_bad_annotation_refused_by_the_mutating_hook(server: RunningServer) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"]["airflow-pod-webhook.io/memory"] = "lots"
    _, body, _ = post(server.connect(), "/mutate", review(pod, uid="m-1"))
    answer = body["response"]
    assert answer["allowed"] is False and answer["status"]["code"] == 400
    assert "airflow-pod-webhook.io/memory: 'lots' is not a Kubernetes quantity" in (
        answer["status"]["message"])


def test_readyz_reports_the_policy_revision(server: RunningServer) -> None:
    conn = server.connect()
    conn.request("GET", "/readyz")
    response = conn.getresponse()
    detail = json.loads(response.read())
    assert response.status == 200 and detail["status"] == "ready" and detail["revision"]


def test_server_generated_certs_are_reused_on_restart(tmp_path: Path) -> None:
    with running_server(tmp_path, POLICIES, workers=1) as first:
        ca = (first.cert_dir / "ca.crt").read_bytes()
    with running_server(tmp_path, POLICIES, workers=1) as second:
        assert (second.cert_dir / "ca.crt").read_bytes() == ca


def test_review_paths_take_only_post(server: RunningServer) -> None:
    conn = server.connect()
    conn.request("GET", "/mutate")
    response = conn.getresponse()
    assert response.status == 405 and response.getheader("Allow") == "POST"
    assert json.loads(response.read()) == {"error": "use POST"}


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunningServer, Path]:
    """A server that takes reviews only from kube-apiserver's client certificate."""
    tmp = tmp_path_factory.mktemp("mtls")
    client = write_apiserver_client(tmp / "client", ["airflow-pod-webhook.airflow-pod-webhook.svc"],
                                    "/etc/kubernetes/admission-kubeconfig.yaml")
    with running_server(tmp, POLICIES, workers=1,
                        extra=("--client-ca", str(client.client_ca))) as running:
        yield running, tmp / "client"


def with_client_cert(server: RunningServer, cert: Path, key: Path) -> PinnedHTTPSConnection:
    context = server.tls_context()
    context.load_cert_chain(cert, key)
    return PinnedHTTPSConnection("127.0.0.1", server.port, SVC_NAME, context, 10)


def test_with_mtls_the_api_servers_client_cert_gets_reviews_answered(mtls_server) -> None:
    server, client = mtls_server
    conn = with_client_cert(server, client / "apiserver-client.crt",
                            client / "apiserver-client.key")
    status, body, _ = post(conn, "/validate", review(airflow_pod("airflow3-executor"),
                                                    uid="with-cert"))
    assert status == 200 and body["response"]["uid"] == "with-cert"
    [line] = server.wait_for_decisions(1)
    assert (line["uid"], line["decision"]) == ("with-cert", "deny")  # not mutated first


def test_with_mtls_a_review_without_a_client_cert_is_refused_and_not_a_decision(
        mtls_server) -> None:
    server, _ = mtls_server
    before = server.metric("airflow_pod_webhook_admission_requests_total", hook="mutate",
                           decision="allow", outcome="answered")
    status, body, _ = post(server.connect(), "/mutate", review(airflow_pod("airflow3-executor"),
                                                              uid="forged"))
    assert (status, body) == (401, {"error": "a client certificate signed by the webhook's "
                                             "client CA is required"})
    assert server.metric("airflow_pod_webhook_unauthenticated_requests_total",
                         hook="mutate") >= 1
    assert server.metric("airflow_pod_webhook_admission_requests_total", hook="mutate",
                         decision="allow", outcome="answered") == before
    refused = [json.loads(line) for line in server.log().splitlines()
               if '"event":"unauthenticated"' in line]
    assert refused and refused[-1]["hook"] == "mutate" and refused[-1]["peer"] == "127.0.0.1"
    assert "forged" not in server.log()  # the body was never read, let alone decided on
    assert server.get("/readyz")[0] == 200  # probes present no certificate


def test_with_mtls_a_caller_without_a_cert_is_answered_before_it_sends_its_body(
        mtls_server) -> None:
    """Its body is never read, so it holds none of the worker's memory for bodies: the 401
    comes from the head alone, and the connection closes after it."""
    server, _ = mtls_server
    sock = server.tls_context().wrap_socket(
        socket.create_connection(("127.0.0.1", server.port), timeout=5),
        server_hostname=SVC_NAME)
    sock.sendall(b"POST /validate HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
                 b"Connection: keep-alive\r\nContent-Length: 3000000\r\n\r\n{")
    answer = b""
    while chunk := sock.recv(65536):  # ends when the server closes the connection
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert answer.endswith(b'{"error":"a client certificate signed by the webhook\'s client CA '
                           b'is required"}')
    sock.close()


def test_with_mtls_a_cert_from_another_ca_fails_the_handshake(mtls_server,
                                                              tmp_path: Path) -> None:
    server, _ = mtls_server
    other = write_apiserver_client(tmp_path, ["x"], "/x")
    conn = with_client_cert(server, other.client_cert, other.client_key)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        post(conn, "/validate", review(airflow_pod("airflow3-executor")))


def test_the_client_ca_is_optional_at_the_handshake_and_reloaded_when_it_changes(
        tmp_path: Path) -> None:
    paths = write_certs(tmp_path / "serving", "airflow-pod-webhook", "airflow-pod-webhook")
    client = write_apiserver_client(tmp_path / "client", ["h"], "/x")
    tls = ReloadingTLSContext(paths.tls_crt, paths.tls_key, client_ca=client.client_ca)
    first = tls.get()
    assert first.verify_mode == ssl.CERT_OPTIONAL  # probes present no certificate
    assert tls.get() is first
    client.client_ca.unlink()
    client.client_ca.with_suffix(".key").unlink()
    write_apiserver_client(tmp_path / "client", ["h"], "/x")  # a new client CA
    assert tls.get() is not first and tls.loads == 2
    without = ReloadingTLSContext(paths.tls_crt, paths.tls_key).get()
    assert without.verify_mode == ssl.CERT_NONE


def test_with_mtls_peers_stalling_mid_handshake_do_not_starve_the_api_servers_reviews(
        mtls_server) -> None:
    """Any pod that reaches port 8443 (no certificate needed: the handshake is where it
    stalls) against kube-apiserver's kept-alive connection, which must still be answered."""
    server, client = mtls_server
    pooled = with_client_cert(server, client / "apiserver-client.crt",
                              client / "apiserver-client.key")
    pooled.timeout = 3.0
    post(pooled, "/mutate?timeout=5s", review(airflow_pod("airflow3-executor"), uid="before"))
    stalled = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(12)]
    try:
        for sock in stalled:
            sock.sendall(b"\x16\x03\x01")  # a TLS record header, and nothing after it
        time.sleep(1.0)  # with gthread's pool, every stalled peer then held a thread
        started = time.monotonic()
        status, body, _ = post(pooled, "/mutate?timeout=5s",
                               review(airflow_pod("airflow3-executor"), uid="during"))
        assert (status, body["response"]["uid"]) == (200, "during")
        assert time.monotonic() - started < 1.0
    finally:
        for sock in stalled:
            sock.close()
        pooled.close()
        assert server.get("/readyz")[0] == 200  # the threads are back once the peers leave
