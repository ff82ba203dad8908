"""Self-registration (`serve --patch-ca-bundle`): the pure decision, the poll loop against a fake
API, and the real server keeping a (fake) API server's caBundle current through rotations."""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.support.fake_admission_api import FakeAdmissionApi, FakeApiServer
from tests.support.paths import POLICIES
from tests.support.server_process import running_server, wait_ready
from webhook.cli import build_parser
from webhook.cluster import ca_injection
from webhook.cluster.ca_injection import (
    CABundleInjector,
    Decision,
    InjectorSettings,
    InjectorState,
    decide,
    file_stamp,
    kubernetes_patcher,
    load_api_client,
)
from webhook.cluster.certs import generate_ca, write_certs
from webhook.cluster.registration import (
    MUTATING_KIND,
    VALIDATING_KIND,
    merge_ca_bundles,
    webhook_configurations,
)

SETTINGS = InjectorSettings(poll_interval=1, resync_interval=600, backoff_initial=2,
                            backoff_max=60)
STAMP = (1, 100, 7)


def subjects(bundle: bytes) -> list[str]:
    return [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(bundle)]


# --- decide: pure ------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "stamp", "now", "expected"), [
    (InjectorState(), None, 0, Decision(False, "no ca.crt")),
    (InjectorState(), STAMP, 0, Decision(True, "start")),
    (InjectorState(failures=1, retry_at=2), STAMP, 1,
     Decision(False, "backing off after a failure")),
    (InjectorState(failures=1, retry_at=2), STAMP, 2, Decision(True, "retry")),
    (InjectorState(STAMP, 0), STAMP, 599, Decision(False, "up to date")),
    (InjectorState(STAMP, 0), (2, 100, 7), 1, Decision(True, "ca.crt changed")),
    (InjectorState(STAMP, 0), (1, 100, 8), 1, Decision(True, "ca.crt changed")),
    (InjectorState(STAMP, 0), STAMP, 600, Decision(True, "resync")),
    (InjectorState(STAMP, 0, failures=2, retry_at=700), STAMP, 650,
     Decision(False, "backing off after a failure")),
    # ca.crt gone mid-way (Secret without ca.crt): keep what was applied, patch nothing
    (InjectorState(STAMP, 0), None, 5, Decision(False, "no ca.crt")),
])
def test_decide(state: InjectorState, stamp: Any, now: float, expected: Decision) -> None:
    assert decide(state, stamp, now, SETTINGS) == expected


def test_resync_can_be_disabled() -> None:
    settings = InjectorSettings(resync_interval=0)
    assert decide(InjectorState(STAMP, 0), STAMP, 10**9, settings) == Decision(False, "up to date")


def test_backoff_doubles_and_is_capped() -> None:
    assert [SETTINGS.backoff(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


def test_stamp_follows_a_kubelet_symlink_swap(tmp_path: Path) -> None:
    for version in ("..v1", "..v2"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "ca.crt").write_bytes(b"same size")
    os.symlink("..v1", tmp_path / "..data")
    os.symlink("..data/ca.crt", tmp_path / "ca.crt")
    before = file_stamp(tmp_path / "ca.crt")
    os.symlink("..v2", tmp_path / "..data_tmp")
    os.rename(tmp_path / "..data_tmp", tmp_path / "..data")
    assert file_stamp(tmp_path / "ca.crt") not in (before, None)
    assert file_stamp(tmp_path / "missing") is None


# --- the poll loop, with a fake clock and a fake API -------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingApi(FakeAdmissionApi):
    """FakeAdmissionApi that can refuse calls the way RBAC or a down API server would."""

    def __init__(self, objects: list[dict] | None = None) -> None:
        super().__init__(objects)
        self.fail_with: Exception | None = None
        self.timeouts: list[Any] = []

    def _read(self, kind: str, name: str, **kw: Any) -> Any:
        self.timeouts.append(kw.get("_request_timeout"))
        if self.fail_with is not None:
            raise self.fail_with
        return super()._read(kind, name, **kw)


class ApiError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    write_certs(tmp_path, "airflow-pod-webhook", "airflow-pod-webhook")
    return tmp_path


def injector(ca_dir: Path, api: RecordingApi, clock: Clock) -> CABundleInjector:
    return CABundleInjector(ca_dir / "ca.crt", kubernetes_patcher(api_factory=lambda: api),
                            SETTINGS, clock)


def test_patches_at_start_then_only_when_ca_changes(ca_dir: Path) -> None:
    old_ca = (ca_dir / "ca.crt").read_bytes()
    api, clock = RecordingApi(webhook_configurations(None)), Clock()
    inj = injector(ca_dir, api, clock)

    assert inj.poll_once() == Decision(True, "start")
    assert api.bundle(MUTATING_KIND) == api.bundle(VALIDATING_KIND) == old_ca
    assert set(api.timeouts) == {10.0}, "every API call carries a timeout"

    api.calls.clear()
    clock.now += 5
    assert inj.poll_once() == Decision(False, "up to date")
    assert api.calls == []

    # CA renewal: the Secret gets a new CA; caBundle must trust old and new.
    (ca_dir / "ca.crt").unlink()
    (ca_dir / "ca.key").unlink()
    write_certs(ca_dir, "airflow-pod-webhook", "airflow-pod-webhook")
    new_ca = (ca_dir / "ca.crt").read_bytes()
    clock.now += 5
    assert inj.poll_once() == Decision(True, "ca.crt changed")
    for kind in (MUTATING_KIND, VALIDATING_KIND):
        assert api.bundle(kind) == merge_ca_bundles(old_ca, new_ca) == new_ca + old_ca
    assert inj.patches == 2


def test_failures_are_logged_and_retried_with_backoff(
        ca_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    api, clock = RecordingApi(), Clock()
    api.fail_with = ApiError(403, "Forbidden")
    inj = injector(ca_dir, api, clock)
    caplog.set_level(logging.INFO, "airflow_pod_webhook.ca_injection")

    assert inj.poll_once() == Decision(True, "start")
    assert inj.state.failures == 1 and inj.patches == 0
    assert "403 Forbidden" in caplog.text and "apply deploy/ first" in caplog.text
    clock.now += 1.9
    assert inj.poll_once() == Decision(False, "backing off after a failure")
    clock.now += 0.1
    assert inj.poll_once() == Decision(True, "retry")
    assert inj.state.failures == 2 and inj.state.retry_at == clock.now + 4

    # The admin applies deploy/ (the configurations now exist) and access works: patched.
    api.fail_with = None
    api.store = RecordingApi(webhook_configurations(None)).store
    clock.now += 4
    assert inj.poll_once() == Decision(True, "retry")
    assert inj.state == InjectorState(file_stamp(ca_dir / "ca.crt"), clock.now)
    assert api.bundle(VALIDATING_KIND) == (ca_dir / "ca.crt").read_bytes()


def test_configurations_missing_are_created_when_credentials_allow(ca_dir: Path) -> None:
    # envtest/dev credentials may create; in-cluster RBAC may not (previous test).
    api = RecordingApi()
    injector(ca_dir, api, Clock()).poll_once()
    assert ("create", MUTATING_KIND) in api.calls and ("create", VALIDATING_KIND) in api.calls
    assert api.bundle(MUTATING_KIND) == (ca_dir / "ca.crt").read_bytes()


def test_resync_repairs_a_wiped_ca_bundle(ca_dir: Path) -> None:
    api, clock = RecordingApi(webhook_configurations(None)), Clock()
    inj = injector(ca_dir, api, clock)
    inj.poll_once()
    # `kubectl apply -k deploy/` (client-side) drops caBundle; the resync puts it back.
    api.store = RecordingApi(webhook_configurations(None)).store
    clock.now += 600
    assert inj.poll_once() == Decision(True, "resync")
    assert api.bundle(MUTATING_KIND) == (ca_dir / "ca.crt").read_bytes()


def test_missing_or_unusable_ca_is_never_sent(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    api, clock = RecordingApi(webhook_configurations(None)), Clock()
    inj = injector(tmp_path, api, clock)
    assert inj.poll_once() == Decision(False, "no ca.crt")
    assert "does not exist yet" in caplog.text
    (tmp_path / "ca.crt").write_bytes(b"not a certificate")
    assert inj.poll_once() == Decision(True, "start")
    assert api.calls == [] and inj.state.failures == 1
    (tmp_path / "ca.crt").write_bytes(generate_ca()[0])
    clock.now += 2
    assert inj.poll_once().patch and inj.patches == 1


def test_thread_runs_and_stops(ca_dir: Path) -> None:
    api = RecordingApi(webhook_configurations(None))
    inj = CABundleInjector(ca_dir / "ca.crt", kubernetes_patcher(api_factory=lambda: api),
                           InjectorSettings(poll_interval=0.01))
    thread = inj.start()
    deadline = time.monotonic() + 5
    while inj.patches == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    inj.stop()
    assert inj.patches == 1 and not thread.is_alive() and thread.daemon


def test_run_is_bounded_by_max_polls(ca_dir: Path) -> None:
    api = RecordingApi(webhook_configurations(None))
    inj = CABundleInjector(ca_dir / "ca.crt", kubernetes_patcher(api_factory=lambda: api),
                           InjectorSettings(poll_interval=0))
    inj.run(max_polls=3)
    assert inj.patches == 1 and len(api.calls) == 4  # 2 reads + 2 patches, then no-ops


# --- kubernetes client configuration -----------------------------------------------------------


def write_kubeconfig(path: Path, server: str) -> None:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))


def test_kubeconfig_wins_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:1")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    client = load_api_client()
    assert client.configuration.host == "http://127.0.0.1:1"


def test_no_credentials_is_a_retried_failure_not_a_crash(
        ca_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    inj = CABundleInjector(ca_dir / "ca.crt", kubernetes_patcher(), SETTINGS, Clock())
    assert inj.poll_once().patch and inj.state.failures == 1


def test_describe_error_names_the_rbac_fix() -> None:
    assert "get and patch" in ca_injection.describe_error(ApiError(403, "Forbidden"))
    assert ca_injection.describe_error(ApiError(409, "Conflict")) == "HTTP 409 Conflict"
    assert ca_injection.describe_error(OSError("refused")) == "OSError: refused"


def test_cli_flag_is_off_by_default() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve"]).patch_ca_bundle is False
    args = parser.parse_args(["serve", "--patch-ca-bundle", "--ca-poll-interval", "0.5"])
    assert args.patch_ca_bundle is True and args.ca_poll_interval == 0.5


# --- the real server, self-registering against a fake API server -------------------------------


class RbacFakeApiServer(FakeApiServer):
    """FakeApiServer whose POST is refused, as the self-patching RBAC refuses create."""

    store: dict[tuple[str, str], dict] = {}
    requests: list[tuple[str, str, str]] = []

    def do_POST(self) -> None:
        self.requests.append(("POST", self._route()[0], ""))
        self._send(403, {"kind": "Status", "apiVersion": "v1", "code": 403,
                         "reason": "Forbidden", "message": "cannot create resource"})


@pytest.fixture
def rbac_fake_api(tmp_path: Path) -> Iterator[Path]:
    RbacFakeApiServer.store, RbacFakeApiServer.requests = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RbacFakeApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield kubeconfig
    finally:
        server.shutdown()
        server.server_close()


def stored_bundle(kind: str) -> bytes | None:
    obj = RbacFakeApiServer.store.get((kind, "airflow-pod-webhook"))
    value = obj and obj["webhooks"][0]["clientConfig"].get("caBundle")
    return base64.b64decode(value) if value else None


def wait_until(condition: Any, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def test_serve_patch_ca_bundle_end_to_end(tmp_path: Path, rbac_fake_api: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(rbac_fake_api))
    with running_server(tmp_path, POLICIES, workers=1,
                        extra=("--patch-ca-bundle", "--ca-poll-interval", "0.1")) as server:
        # 1. Configurations absent and create forbidden: logged, retried, still serving.
        wait_until(lambda: "403 Forbidden" in server.log(), "the RBAC failure to be logged")
        wait_ready(server)
        # 2. The admin applies deploy/ (configurations without caBundle): filled on retry.
        for obj in webhook_configurations(None):
            RbacFakeApiServer.store[obj["kind"], "airflow-pod-webhook"] = obj
        old_ca = (server.cert_dir / "ca.crt").read_bytes()
        wait_until(lambda: stored_bundle(VALIDATING_KIND) == old_ca
                   and stored_bundle(MUTATING_KIND) == old_ca, "caBundle to be filled")
        # 3. CA rotation in the mounted Secret: caBundle trusts new and old.
        new_ca, new_key = generate_ca("airflow-pod-webhook-ca-2")
        (server.cert_dir / "ca.key").write_bytes(new_key)
        (server.cert_dir / "ca.crt").write_bytes(new_ca)
        write_certs(server.cert_dir, "airflow-pod-webhook", "airflow-pod-webhook")
        wait_until(lambda: stored_bundle(VALIDATING_KIND) == new_ca + old_ca
                   and stored_bundle(MUTATING_KIND) == new_ca + old_ca,
                   "caBundle to hold the new and the old CA")
        assert subjects(stored_bundle(MUTATING_KIND) or b"") == [
            "CN=airflow-pod-webhook-ca-2", "CN=airflow-pod-webhook-ca"]
        assert server.process.poll() is None
    methods = {method for method, _, _ in RbacFakeApiServer.requests}
    assert methods == {"GET", "POST", "PATCH"}
