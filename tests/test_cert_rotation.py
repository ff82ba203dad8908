"""Serving-cert rotation under load: the real server, clients that keep opening new TLS
connections, and the cert (and CA) swapped underneath them, as a Secret volume update does.

What is proven: no handshake and no request fails while the cert is renewed with the same CA
or switched to a new CA the clients already trust, and every connection opened after a
rotation finished is served the new cert (compared by serial number).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509

from tests.support.admission_reviews import pod_review as review
from tests.support.paths import POLICIES
from tests.support.pods import admitted_pod
from tests.support.server_process import (
    SVC_NAME,
    PinnedHTTPSConnection,
    RunningServer,
    post,
    replace_file,
    running_server,
)
from webhook.cluster.certs import generate_ca, generate_serving_cert, write_certs
from webhook.cluster.registration import merge_ca_bundles

SERVICE = NAMESPACE = "airflow-pod-webhook"
CLIENT_THREADS = 4
REQUESTS_PER_CONNECTION = 3  # a fresh handshake every few requests, as a busy apiserver does
ROTATION_DEADLINE = 10.0  # seconds for a rotation to reach new connections
STREAM_DEADLINE = 45.0  # hard stop for the client threads, whatever happens


def serial_of(pem_or_der: bytes) -> int:
    if pem_or_der.startswith(b"-----"):
        return x509.load_pem_x509_certificate(pem_or_der).serial_number
    return x509.load_der_x509_certificate(pem_or_der).serial_number


@dataclass
class Handshake:
    started: float  # time.monotonic() before connect()
    serial: int


@dataclass
class ReviewStream:
    """Client threads posting reviews over short-lived connections until stopped.

    Each connection verifies the server against `trust` (PEM bundle) as it is at connect
    time, records the serial of the cert it was served, then posts a few reviews.
    """

    server: RunningServer
    trust: bytes
    handshakes: list[Handshake] = field(default_factory=list)
    requests: int = 0
    failed_handshakes: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def set_trust(self, bundle: bytes) -> None:
        with self._lock:
            self.trust = bundle

    def _context(self) -> ssl.SSLContext:
        with self._lock:
            bundle = self.trust
        context = ssl.create_default_context(cadata=bundle.decode("ascii"))
        context.check_hostname = True
        return context

    def _client(self, index: int) -> None:
        pod = admitted_pod("airflow3-executor")  # /validate judges the mutated pod
        deadline = time.monotonic() + STREAM_DEADLINE
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            conn = PinnedHTTPSConnection("127.0.0.1", self.server.port, SVC_NAME,
                                         self._context(), timeout=10)
            started = time.monotonic()
            try:
                conn.connect()
                serial = serial_of(conn.sock.getpeercert(binary_form=True))
            except (OSError, ssl.SSLError) as exc:
                with self._lock:
                    self.failed_handshakes.append(f"client {index}: {exc!r}")
                conn.close()
                continue
            with self._lock:
                self.handshakes.append(Handshake(started, serial))
            try:
                for _ in range(REQUESTS_PER_CONNECTION):
                    n += 1
                    uid = f"c{index}-{n}"
                    path = "/mutate" if n % 2 else "/validate"
                    status, body, _ = post(conn, f"{path}?timeout=5s", review(pod, uid=uid))
                    answer = body.get("response", {})
                    with self._lock:
                        self.requests += 1
                        if status != 200 or answer.get("uid") != uid or not answer.get("allowed"):
                            self.failed_requests.append(f"{uid} {path}: {status} {body}")
            except Exception as exc:  # any transport error mid-request is a failed request
                with self._lock:
                    self.failed_requests.append(f"client {index} request {n}: {exc!r}")
            finally:
                conn.close()

    def start(self) -> None:
        for i in range(CLIENT_THREADS):
            thread = threading.Thread(target=self._client, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=STREAM_DEADLINE)
        assert not any(t.is_alive() for t in self._threads), "a client thread hung"

    def handshake_count(self) -> int:
        with self._lock:
            return len(self.handshakes)

    def wait_for_handshakes(self, count: int, after: float) -> None:
        """Block until `count` handshakes have started after `after` (monotonic)."""
        stop = time.monotonic() + ROTATION_DEADLINE
        while time.monotonic() < stop:
            with self._lock:
                if sum(h.started > after for h in self.handshakes) >= count:
                    return
            time.sleep(0.02)
        raise AssertionError(f"fewer than {count} handshakes in {ROTATION_DEADLINE}s; "
                             f"failures: {self.failed_handshakes[-3:]}")

    def serials_since(self, after: float) -> set[int]:
        with self._lock:
            return {h.serial for h in self.handshakes if h.started > after}


@contextlib.contextmanager
def streaming(server: RunningServer, trust: bytes) -> Iterator[ReviewStream]:
    stream = ReviewStream(server, trust)
    stream.start()
    try:
        yield stream
    finally:
        stream.stop()


def rotate_and_check(stream: ReviewStream, rotate: Callable[[], int]) -> int:
    """Run `rotate` (returns the new cert's serial); every connection opened afterwards must
    see that serial. Returns the serial."""
    stream.wait_for_handshakes(CLIENT_THREADS, after=time.monotonic() - 60)
    new_serial = rotate()
    done = time.monotonic()
    stream.wait_for_handshakes(2 * CLIENT_THREADS, after=done)
    assert stream.serials_since(done) == {new_serial}, "a new connection got an old cert"
    return new_serial


def server_notes(server: RunningServer) -> str:
    """The server's log without the decision log lines: what it said about TLS and reloads."""
    return "\n".join(line for line in server.log().splitlines()
                     if not line.startswith("{"))[-4000:]


def report(name: str, stream: ReviewStream, rotations: int) -> None:
    print(f"\n{name}: {stream.requests} requests over {len(stream.handshakes)} TLS handshakes "
          f"from {CLIENT_THREADS} threads, {rotations} rotations, "
          f"{len(stream.failed_handshakes)} failed handshakes, "
          f"{len(stream.failed_requests)} failed requests")


def test_rotation_under_load_drops_nothing(tmp_path: Path) -> None:
    with running_server(tmp_path, POLICIES, workers=2) as server:
        cert_dir = server.cert_dir
        ca1 = (cert_dir / "ca.crt").read_bytes()
        served = [serial_of((cert_dir / "tls.crt").read_bytes())]
        ca2_cert, ca2_key = generate_ca("airflow-pod-webhook-ca-2")

        def renew_same_ca() -> int:
            paths = write_certs(cert_dir, SERVICE, NAMESPACE)
            assert paths.ca_crt.read_bytes() in (ca1, ca2_cert)  # the CA is reused
            return serial_of(paths.tls_crt.read_bytes())

        def switch_to_new_ca() -> int:
            # The Secret gets the new CA and a serving cert it signed; write_certs reuses it.
            replace_file(cert_dir / "ca.key", ca2_key)
            replace_file(cert_dir / "ca.crt", ca2_cert, 0o644)
            paths = write_certs(cert_dir, SERVICE, NAMESPACE)
            return serial_of(paths.tls_crt.read_bytes())

        with streaming(server, ca1) as stream:
            served.append(rotate_and_check(stream, renew_same_ca))
            served.append(rotate_and_check(stream, renew_same_ca))
            # CA rotation, step 1: clients (the caBundle) trust old + new before the switch.
            stream.set_trust(merge_ca_bundles(ca1, ca2_cert))
            stream.wait_for_handshakes(2 * CLIENT_THREADS, after=time.monotonic())
            # Step 2: the server switches to a cert from the new CA.
            served.append(rotate_and_check(stream, switch_to_new_ca))
            served.append(rotate_and_check(stream, renew_same_ca))
        report("same-CA renewals and a CA rotation", stream, rotations=4)

        assert stream.failed_handshakes == [], server_notes(server)
        assert stream.failed_requests == [], server_notes(server)
        assert len(set(served)) == 5
        assert {h.serial for h in stream.handshakes} <= set(served)
        assert stream.requests >= 4 * 2 * CLIENT_THREADS

        # Why step 1 matters: a client that still trusts only the old CA is now refused.
        stale = PinnedHTTPSConnection("127.0.0.1", server.port, SVC_NAME,
                                      ssl.create_default_context(cadata=ca1.decode()), 5)
        with pytest.raises(ssl.SSLCertVerificationError):
            stale.connect()
        fresh = PinnedHTTPSConnection("127.0.0.1", server.port, SVC_NAME,
                                      ssl.create_default_context(cadata=ca2_cert.decode()), 5)
        fresh.connect()
        assert serial_of(fresh.sock.getpeercert(binary_form=True)) == served[-1]
        fresh.close()


# --- a Secret volume update, exactly as the kubelet writes it ----------------------------------


def kubelet_timestamp_dir(root: Path) -> Path:
    # kubelet's AtomicWriter names each payload version "..<timestamp>", e.g. ..2026_01_02_...
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y_%m_%d_%H_%M_%S.%f")
    path = Path(tempfile.mkdtemp(dir=root, prefix=f"..{stamp}"))
    path.chmod(0o755)
    return path


def kubelet_write(root: Path, files: dict[str, bytes]) -> Path:
    """Publish a new Secret payload the way kubelet's AtomicWriter does.

    1. write every file into a fresh `..<timestamp>` directory;
    2. point a new symlink `..data_tmp` at it and rename it over `..data` (the atomic step);
    3. create the user-visible `name -> ..data/name` symlinks (only once, they never change);
    4. remove the previous timestamped directory.
    """
    previous = os.readlink(root / "..data") if (root / "..data").is_symlink() else None
    payload = kubelet_timestamp_dir(root)
    for name, data in files.items():
        (payload / name).write_bytes(data)
        (payload / name).chmod(0o644)
    tmp_link = root / "..data_tmp"
    os.symlink(payload.name, tmp_link)
    os.rename(tmp_link, root / "..data")
    for name in files:
        if not (root / name).is_symlink():
            os.symlink(f"..data/{name}", root / name)
    if previous is not None:
        shutil.rmtree(root / previous)
    return payload


def test_kubelet_secret_volume_swap_is_picked_up(tmp_path: Path) -> None:
    ca_cert, ca_key = generate_ca()

    def payload() -> tuple[dict[str, bytes], int]:
        cert, key = generate_serving_cert(ca_cert, ca_key, SERVICE, NAMESPACE)
        return {"tls.crt": cert, "tls.key": key, "ca.crt": ca_cert}, serial_of(cert)

    cert_dir = tmp_path / "certs"  # where running_server points --cert-dir
    cert_dir.mkdir()
    first, first_serial = payload()
    kubelet_write(cert_dir, first)
    assert (cert_dir / "tls.crt").is_symlink()

    with running_server(tmp_path, POLICIES, workers=2) as server:
        kept_alive = server.connect()
        kept_alive.connect()
        assert serial_of(kept_alive.sock.getpeercert(binary_form=True)) == first_serial
        status, _, _ = post(kept_alive, "/validate", review(admitted_pod("airflow3-kpo"), uid="k1"))
        assert status == 200

        with streaming(server, ca_cert) as stream:
            serials = [first_serial]
            for _ in range(2):

                def swap() -> int:
                    files, serial = payload()
                    kubelet_write(cert_dir, files)
                    return serial

                serials.append(rotate_and_check(stream, swap))
        report("kubelet ..data swaps", stream, rotations=2)

        assert stream.failed_handshakes == [] and stream.failed_requests == []
        # Only the newest payload directory is left, and the server needs nothing else.
        assert len([p for p in cert_dir.iterdir() if p.name.startswith("..2")]) == 1
        # A connection opened before the swaps keeps working on its original session.
        status, body, _ = post(kept_alive, "/validate",
                               review(admitted_pod("airflow3-kpo"), uid="k2"))
        assert status == 200 and body["response"]["uid"] == "k2"
        assert serial_of(kept_alive.sock.getpeercert(binary_form=True)) == first_serial
        kept_alive.close()
        assert "serving certificate reloaded" in server.log()


def test_worker_started_mid_rotation_serves_the_last_whole_pair(tmp_path: Path) -> None:
    """A worker forked while the key is already new but the cert still old must serve the old
    pair: with no context of its own to fall back on, gunicorn answered its first handshake
    with a plaintext HTTP 400 (the client saw WRONG_VERSION_NUMBER)."""
    with running_server(tmp_path, POLICIES, workers=1) as server:
        old_serial = serial_of((server.cert_dir / "tls.crt").read_bytes())
        ca_cert = (server.cert_dir / "ca.crt").read_bytes()
        ca_key = (server.cert_dir / "ca.key").read_bytes()
        _, new_key = generate_serving_cert(ca_cert, ca_key, SERVICE, NAMESPACE)
        (worker,) = server.worker_pids()
        # Half a rotation: the key is replaced, the matching cert not yet written.
        replace_file(server.cert_dir / "tls.key", new_key)
        os.kill(worker, 9)
        server.wait_workers(1, exclude=frozenset({worker}))

        conn = server.connect()
        conn.connect()  # the new worker's very first handshake
        assert serial_of(conn.sock.getpeercert(binary_form=True)) == old_serial
        status, body, _ = post(conn, "/validate", review(admitted_pod("airflow3-kpo"), uid="w1"))
        conn.close()
        assert status == 200 and body["response"]["uid"] == "w1"
