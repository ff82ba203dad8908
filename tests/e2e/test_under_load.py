"""Pod creates streaming through a real kube-apiserver while the webhook changes underneath:
its policy folder swapped, its serving certificate rotated, a gunicorn worker killed.
The API server's webhook client (Go, HTTP/1.1 keep-alive, no retries of a POST) decides what a
disturbance costs; these tests count it per create: failed, or created without our patch
(the mutating hook's `Ignore` turns a failed call into a silently unmutated pod)."""

from __future__ import annotations

import os
import signal
import ssl
import time

import pytest
from cryptography import x509

from tests.e2e.harness import E2EEnvironment, LocalWebhook, deadline_loop, e2e_pod
from tests.e2e.streams import CreateStream
from tests.support.policy_folders import VARIANT
from tests.support.server_process import policy_files_of, replace_file
from webhook.cluster.certs import generate_ca, write_certs
from webhook.cluster.registration import DEFAULT_NAME, merge_ca_bundles

pytestmark = pytest.mark.e2e
THREADS = 4
SWAPS = 6
VARIANT_LABEL = "policy-variant"  # what SET_B adds to every Airflow pod


def executor_pods(namespace: str):
    return lambda name: e2e_pod("executor-template-and-profile", namespace, name)


def revision_of(metadata: dict) -> str:
    """The revision our applied annotation names: `revision=<hash>; PodTemplate/...`."""
    applied = metadata["annotations"]["airflow-pod-webhook.io/applied"]
    return applied.split(";", 1)[0].removeprefix("revision=")


def test_policy_folder_swapped_while_creates_stream(
        e2e: E2EEnvironment, local_webhook: LocalWebhook, fresh_namespace: str) -> None:
    set_a = policy_files_of(local_webhook.policy_mount.root)  # what the suite serves
    set_b = {**set_a, "15-variant.yaml": VARIANT}
    revisions: dict[str, str] = {}
    with CreateStream(e2e, fresh_namespace, executor_pods(fresh_namespace), THREADS,
                      "swap") as stream:
        stream.wait_for(THREADS)
        for i in range(SWAPS):
            name = "B" if i % 2 == 0 else "A"
            revisions[name] = local_webhook.serve_policies(set_b if name == "B" else set_a)
            stream.wait_for(len(stream.outcomes) + THREADS)
    assert local_webhook.served_revisions() == {revisions["A"]}
    by_revision: dict[str, int] = {}
    wrong = []
    for outcome in stream.outcomes:
        if outcome.metadata is None:
            continue
        revision = revision_of(outcome.metadata)
        by_revision[revision] = by_revision.get(revision, 0) + 1
        variant = (outcome.metadata.get("labels") or {}).get(VARIANT_LABEL)
        if revision not in revisions.values() or (variant == "b") != (revision == revisions["B"]):
            wrong.append(f"{outcome.name}: revision {revision}, {VARIANT_LABEL}={variant}")
    print(f"\npolicy swapped {SWAPS} times while {stream.summary()}; pods per revision "
          f"{ {r[:8]: n for r, n in by_revision.items()} }")
    assert [o.error for o in stream.failed] == []
    assert [o.name for o in stream.unmutated] == []
    assert wrong == []
    assert set(by_revision) == set(revisions.values()), "both revisions must admit pods"


def served_certificate(webhook: LocalWebhook) -> x509.Certificate:
    """The certificate a new connection to the webhook is served."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    import socket

    with socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw, \
            context.wrap_socket(raw) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def wait_served(webhook: LocalWebhook, cert_pem: bytes) -> None:
    want = x509.load_pem_x509_certificate(cert_pem).serial_number
    for _ in deadline_loop(10, 0.05):
        if served_certificate(webhook).serial_number == want:
            return
    raise AssertionError("the new serving certificate was never served")


def ca_bundles(e2e: E2EEnvironment) -> list[bytes]:
    import base64
    import json

    api = e2e.admission_api()
    return [base64.b64decode(json.loads(getattr(api, f"read_{kind}_webhook_configuration")(
        DEFAULT_NAME, _preload_content=False).data)["webhooks"][0]["clientConfig"]["caBundle"])
        for kind in ("mutating", "validating")]


def test_serving_certificate_rotated_while_creates_stream(
        e2e: E2EEnvironment, local_webhook: LocalWebhook, fresh_namespace: str) -> None:
    """Renewal with the same CA, then the documented CA rotation with `serve
    --patch-ca-bundle`: the new CA into ca.crt first (new + old), the webhook puts it into
    caBundle, and only then the serving cert switches to the new CA."""
    cert_dir = local_webhook.cert_dir
    old_ca = (cert_dir / "ca.crt").read_bytes()
    new_ca, new_key = generate_ca("airflow-pod-webhook-ca-2")
    with CreateStream(e2e, fresh_namespace, executor_pods(fresh_namespace), THREADS,
                      "rotation") as stream:
        stream.wait_for(THREADS * 2)
        # 1. Renewal: a new serving cert from the same CA.
        write_certs(cert_dir, "airflow-pod-webhook", "airflow-pod-webhook")
        wait_served(local_webhook, (cert_dir / "tls.crt").read_bytes())
        stream.wait_for(len(stream.outcomes) + THREADS * 3)
        # 2. New CA. Step 1: the Secret's ca.crt becomes new + old; tls.crt is unchanged.
        replace_file(cert_dir / "ca.crt", merge_ca_bundles(old_ca, new_ca))
        for _ in deadline_loop(30, 0.2):
            if all(new_ca in b and old_ca in b for b in ca_bundles(e2e)):
                break
        else:
            raise AssertionError(f"caBundle never got the new CA: {ca_bundles(e2e)}")
        time.sleep(2)  # the API server's webhook informers pick up the new caBundle
        stream.wait_for(len(stream.outcomes) + THREADS * 3)
        # Step 2: the serving cert (and the CA files) switch to the new CA.
        replace_file(cert_dir / "ca.key", new_key)
        replace_file(cert_dir / "ca.crt", new_ca)
        write_certs(cert_dir, "airflow-pod-webhook", "airflow-pod-webhook")
        wait_served(local_webhook, (cert_dir / "tls.crt").read_bytes())
        stream.wait_for(len(stream.outcomes) + THREADS * 3)
    served = served_certificate(local_webhook)
    served.verify_directly_issued_by(x509.load_pem_x509_certificate(new_ca))
    print(f"\nserving cert renewed, then moved to a new CA, while {stream.summary()}")
    assert [o.error for o in stream.failed] == []
    assert [o.name for o in stream.unmutated] == []
    assert all(new_ca in b and old_ca in b for b in ca_bundles(e2e)), "old CA dropped too early"


def kill_a_worker(webhook: LocalWebhook) -> int:
    """SIGKILL one gunicorn worker; return once the master has replaced it."""
    server = webhook.server
    victim = min(server.wait_workers(2))
    os.kill(victim, signal.SIGKILL)
    server.wait_workers(2, exclude=frozenset({victim}))
    return victim


def test_worker_killed_while_creates_stream(
        e2e: E2EEnvironment, local_webhook: LocalWebhook, fresh_namespace: str) -> None:
    """Killed between creates, nothing is lost (kube-apiserver's transport drops the dead
    worker's idle connections and dials anew). Killed at a random instant, the calls that
    worker was answering are lost, at most one per create in flight: kube-apiserver does not
    retry a webhook POST, so a lost /validate call fails the create (failurePolicy Fail,
    HTTP 500), and a lost /mutate call (Ignore) leaves a pod without its locked fields, which
    the validating hook then refuses (403, envelope: lockedFields): never an unpatched pod."""
    pods = executor_pods(fresh_namespace)
    with CreateStream(e2e, fresh_namespace, pods, THREADS, "idle-kill") as idle:
        idle.wait_for(THREADS * 5)
        idle.quiesce()
        kill_a_worker(local_webhook)
        time.sleep(0.5)  # the closed connections' FINs reach the API server
        idle.go_on()
        idle.wait_for(len(idle.outcomes) + THREADS * 10)
    with CreateStream(e2e, fresh_namespace, pods, THREADS, "busy-kill") as busy:
        busy.wait_for(THREADS * 5)
        victim = kill_a_worker(local_webhook)
        busy.wait_for(len(busy.outcomes) + THREADS * 10)
    lost = busy.failed + busy.unmutated
    print(f"\nworker killed between creates: {idle.summary()}"
          f"\nworker {victim} killed mid-stream: {busy.summary()}")
    for outcome in lost:
        print(f"  {outcome.name}: {outcome.error or 'created without our patch'}")
    assert idle.failed == [] and idle.unmutated == []
    assert len(lost) <= THREADS, "more lost than creates were in flight"
    assert busy.unmutated == []
    for outcome in busy.failed:
        error = outcome.error
        lost_validate = error.startswith("500 ") and "failed calling webhook" in error
        lost_mutate = error.startswith("403 ") and "(envelope: lockedFields)" in error
        assert lost_validate or lost_mutate, error
