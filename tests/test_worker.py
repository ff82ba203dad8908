"""Peers that stall on port 8443 against kube-apiserver's reviews, on the real server with one
worker: each request is read whole by the worker's main loop before a thread gets it."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.admission_reviews import pod_review as review
from tests.support.paths import POLICIES
from tests.support.pods import airflow_pod
from tests.support.server_process import SVC_NAME, RunningServer, post, running_server
from webhook.admission import MAX_BODY_BYTES
from webhook.serving.framing import CHUNKS_LIMIT
from webhook.serving.worker import (
    BUFFER_BUDGET_BYTES,
    INTAKE_SECONDS,
    STALLED_SECONDS,
    THREAD_IO_SECONDS,
    WAITING_SECONDS,
)

PEERS = 12  # more than the worker's 8 threads


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("worker"), POLICIES, workers=1) as running:
        yield running


def tls_peer(server: RunningServer) -> ssl.SSLSocket:
    """A peer that finished its TLS handshake (no certificate needed for that)."""
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return server.tls_context().wrap_socket(raw, server_hostname=SVC_NAME)


@contextmanager
def peers(server: RunningServer, first_bytes: bytes, count: int = PEERS) -> Iterator[list]:
    sockets = [tls_peer(server) for _ in range(count)]
    try:
        for sock in sockets:
            sock.sendall(first_bytes)
        time.sleep(0.5)  # each peer where it stalls before the review is sent
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def review_answered_at_once(server: RunningServer, uid: str) -> None:
    """An executor pod's review on a new connection is answered, and within a second."""
    conn = server.connect(timeout=3.0)
    started = time.monotonic()
    status, body, _ = post(conn, "/mutate?timeout=5s", review(airflow_pod("airflow3-executor"),
                                                             uid=uid))
    assert (status, body["response"]["uid"], body["response"]["allowed"]) == (200, uid, True)
    assert time.monotonic() - started < 1.0
    conn.close()


def large_review_answered_at_once(server: RunningServer, uid: str, within: float = 1.0
                                  ) -> None:
    """A 900 KB review (past a connection's free 64 KiB) is read and answered in time."""
    conn = server.connect(timeout=INTAKE_SECONDS + 5)
    started = time.monotonic()
    status, body, _ = post(conn, "/validate?timeout=10s", padded_review(900_000, uid))
    assert (status, body["response"]["uid"]) == (200, uid)
    assert time.monotonic() - started < within
    conn.close()


def request_bytes(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {SVC_NAME}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def answers(sock: ssl.SSLSocket, count: int) -> list[tuple[int, bytes]]:
    """Read `count` answers (status, body) off a connection."""
    reader = sock.makefile("rb")
    out = []
    for _ in range(count):
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        out.append((status, reader.read(length)))
    return out


def closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes the connection (read returns nothing or resets)."""
    started = time.monotonic()
    sock.settimeout(INTAKE_SECONDS + 5)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    return time.monotonic() - started


def test_peers_stalling_in_their_headers_do_not_delay_a_review(server: RunningServer) -> None:
    with peers(server, b"POST /mutate HTTP/1.1\r\nHost: h\r\nContent-Le"):
        review_answered_at_once(server, "during-headers")


def test_peers_stalling_in_their_bodies_do_not_delay_a_review(server: RunningServer) -> None:
    half = request_bytes("/validate", b"x" * 20000)[:-10000]
    with peers(server, half):
        review_answered_at_once(server, "during-bodies")


def test_a_stalled_peer_is_closed_after_the_intake_deadline(server: RunningServer) -> None:
    mid_handshake = socket.create_connection(("127.0.0.1", server.port))
    mid_handshake.sendall(b"\x16\x03\x01")
    mid_headers = tls_peer(server)
    mid_headers.sendall(b"GET /readyz HTTP/1.1\r\n")
    started = time.monotonic()
    for sock in (mid_handshake, mid_headers):
        closed_after(sock)
        # closed by the deadline (checked once a second), not at once and not never
        assert INTAKE_SECONDS - 0.5 < time.monotonic() - started < INTAKE_SECONDS + 2.0
        sock.close()


def test_peers_sending_large_bodies_hold_only_the_worker_budget(server: RunningServer) -> None:
    """30 peers each send 2.9 MiB of a 3 MiB review and stall: what the worker holds for
    them is its budget, not 87 MiB; small reviews go on meanwhile."""
    [worker] = server.worker_pids()
    before = _status_kib(worker, "VmRSS")
    sockets = []
    try:
        for _ in range(30):
            sock = tls_peer(server)
            sock.sendall(request_bytes("/validate", b"")[:-2].replace(
                b"Content-Length: 0", f"Content-Length: {MAX_BODY_BYTES}".encode()) + b"\r\n")
            sock.setblocking(False)
            sockets.append((sock, _send_what_fits(sock, MAX_BODY_BYTES - 100 * 1024)))
        time.sleep(0.5)
        review_answered_at_once(server, "during-large-bodies")
        grown_mib = (_status_kib(worker, "VmHWM") - before) / 1024
        assert grown_mib < (BUFFER_BUDGET_BYTES + 30 * 64 * 1024) / 2**20 + 8
        assert sum(sent for _, sent in sockets) > 40 * 2**20  # or the test proved nothing
    finally:
        for sock, _ in sockets:
            sock.close()
    # the memory they held (some while waiting for more, unread, their peers gone) is a
    # legitimate review's once they have waited WAITING_SECONDS, not at their deadline
    large_review_answered_at_once(server, "after", within=WAITING_SECONDS + 0.5)


def test_a_large_review_takes_the_memory_of_stalled_peers(server: RunningServer) -> None:
    """Peers that sent 2.9 MiB of a body and stopped hold all the worker's memory for
    bodies: a 900 KB review arriving then is read at once, the stalled peers closed."""
    with large_stalled_bodies(server, 6):
        time.sleep(STALLED_SECONDS + 0.1)
        large_review_answered_at_once(server, "large")


def test_peers_trickling_into_held_memory_lose_it_to_a_large_review(
        server: RunningServer) -> None:
    """18 peers send 640 KiB each (11.25 of the 12 MiB), then a byte every 0.1 s: a trickle
    keeps no memory from a review sent at full speed, which is read, not dropped."""
    stop = threading.Event()
    sockets = [tls_peer(server) for _ in range(18)]
    for sock in sockets:
        sock.sendall(request_bytes("/validate", b"t" * MAX_BODY_BYTES)[:640 * 1024])

    def trickle() -> None:
        while not stop.wait(0.1):
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(b"t")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        time.sleep(0.5)
        conn = server.connect(timeout=INTAKE_SECONDS + 5)
        started = time.monotonic()
        status, body, _ = post(conn, "/validate?timeout=10s", padded_review(2_000_000, "big"))
        assert (status, body["response"]["uid"]) == (200, "big")
        assert time.monotonic() - started < 2.0
        conn.close()
    finally:
        stop.set()
        trickler.join()
        for sock in sockets:
            sock.close()


def test_peers_closing_while_waiting_for_memory_do_not_stop_the_worker(
        server: RunningServer) -> None:
    """Memory given back while resuming the connections that waited for it (one of them at
    its end) once crashed the worker from its main loop."""
    [worker] = server.worker_pids()
    with large_stalled_bodies(server, 5) as fillers:
        time.sleep(0.4)
        ended = tls_peer(server)
        ended.sendall(request_bytes("/validate", b"a" * MAX_BODY_BYTES)[:200 * 1024])
        time.sleep(0.2)
        ended.close()
        stalled = tls_peer(server)
        stalled.sendall(request_bytes("/validate", b"b" * MAX_BODY_BYTES)[:100 * 1024])
        time.sleep(0.3)
        fillers[0].close()
        time.sleep(1.0)
        stalled.close()
    review_answered_at_once(server, "after-resume")
    assert server.worker_pids() == {worker}
    assert server.crash_marks() == []


def test_peers_that_keep_a_closed_connection_open_do_not_stall_the_worker(
        server: RunningServer) -> None:
    """An HTTP/1.0 request is answered and its connection closed; the peer then neither
    reads nor closes. gunicorn's own graceful close waits 2 s for each in the main loop."""
    with peers(server, b"GET /healthz HTTP/1.0\r\n\r\n", count=20):
        review_answered_at_once(server, "during-closes")


def test_one_byte_chunks_are_refused_past_the_chunk_limit_without_a_thread(
        server: RunningServer) -> None:
    sockets = []
    for _ in range(4):
        sock = tls_peer(server)
        sock.sendall(b"POST /validate HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"1\r\nx\r\n" * (CHUNKS_LIMIT + 10))
        sockets.append(sock)
    review_answered_at_once(server, "during-chunks")
    for sock in sockets:
        [(status, body)] = answers(sock, 1)
        assert (status, json.loads(body)) == (400, {"error": f"more than {CHUNKS_LIMIT} chunks"})
        sock.close()


def test_a_body_awaiting_100_continue_is_asked_for(server: RunningServer) -> None:
    data = json.dumps(review(airflow_pod("airflow3-executor"), uid="continued")).encode()
    sock = tls_peer(server)
    sock.sendall(request_bytes("/validate", data, "Expect: 100-continue\r\n")[:-len(data)])
    sock.settimeout(1.0)
    assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # at once, not after 1 s
    sock.settimeout(10)
    sock.sendall(data)
    [(status, answer)] = answers(sock, 1)
    assert (status, json.loads(answer)["response"]["uid"]) == (200, "continued")
    sock.close()


def test_a_request_after_a_pipelined_one_with_an_absurd_length_is_refused(
        server: RunningServer) -> None:
    sock = tls_peer(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
                 b"POST /validate HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")
    [(first, _), (second, body)] = answers(sock, 2)
    assert (first, second, json.loads(body)) == (200, 413, {"error": "request body too large"})
    sock.close()
    assert server.crash_marks() == []


@contextmanager
def large_stalled_bodies(server: RunningServer, count: int) -> Iterator[list]:
    """`count` peers that each sent what their socket takes of a 3 MiB review, then stopped."""
    sockets = []
    try:
        for _ in range(count):
            sock = tls_peer(server)
            sock.sendall(request_bytes("/validate", b"y" * MAX_BODY_BYTES)[:-MAX_BODY_BYTES])
            sock.setblocking(False)
            _send_what_fits(sock, MAX_BODY_BYTES - 100 * 1024)
            sock.setblocking(True)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_idle_sockets_filling_every_place_delay_a_new_connection_about_a_second(
        server: RunningServer) -> None:
    """300 TCP connections that never start TLS take the worker's 256 places; those still
    without a handshake half a second on give theirs up, so a new connection's review waits
    for the poller's next turn, not for their 3 s deadline."""
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
    try:
        time.sleep(0.2)
        conn = server.connect(timeout=10)
        started = time.monotonic()
        status, body, _ = post(conn, "/mutate?timeout=5s",
                               review(airflow_pod("airflow3-executor"), uid="past-idle"))
        assert (status, body["response"]["uid"]) == (200, "past-idle")
        assert time.monotonic() - started < 2.0  # 2.7 s when they held their places 3 s
        conn.close()
    finally:
        for sock in idle:
            sock.close()


def test_pipelined_requests_are_each_answered(server: RunningServer) -> None:
    first = request_bytes("/mutate?timeout=5s", json.dumps(
        review(airflow_pod("airflow3-executor"), uid="first")).encode())
    second = request_bytes("/validate?timeout=5s", json.dumps(
        review(airflow_pod("airflow3-executor"), uid="second")).encode())
    sock = tls_peer(server)
    sock.sendall(first + second[:100])  # the second's start arrives with the first
    time.sleep(0.3)
    sock.sendall(second[100:])
    [(status1, body1), (status2, body2)] = answers(sock, 2)
    assert (status1, json.loads(body1)["response"]["uid"]) == (200, "first")
    assert (status2, json.loads(body2)["response"]["uid"]) == (200, "second")
    sock.close()


def test_a_chunked_review_is_answered(server: RunningServer) -> None:
    body = json.dumps(review(airflow_pod("airflow3-executor"), uid="chunked")).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 4000]), body[i:i + 4000])
                      for i in range(0, len(body), 4000))
    sock = tls_peer(server)
    sock.sendall(f"POST /validate HTTP/1.1\r\nHost: {SVC_NAME}\r\nContent-Type: "
                 "application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                 + chunks + b"0\r\n\r\n")
    [(status, answer)] = answers(sock, 1)
    assert (status, json.loads(answer)["response"]["uid"]) == (200, "chunked")
    sock.close()


@pytest.mark.parametrize(("sent", "status", "message"), [
    (b"GET /readyz HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 70000 + b"\r\n\r\n", 431,
     "request head too large"),
    (b"POST /mutate HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413,
     "request body too large"),
    (b"POST /mutate HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", 400,
     "invalid Content-Length"),
])
def test_what_no_caller_sends_is_refused_before_a_thread_sees_it(
        server: RunningServer, sent: bytes, status: int, message: str) -> None:
    sock = tls_peer(server)
    sock.sendall(sent)
    [(answered, body)] = answers(sock, 1)
    assert (answered, json.loads(body)) == (status, {"error": message})
    assert closed_after(sock) < 1.0
    sock.close()


def padded_review(padding: int, uid: str) -> bytes:
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["containers"][0].setdefault("env", []).append(
        {"name": "PADDING", "value": "x" * padding})
    return json.dumps(review(pod, uid=uid)).encode()


def test_a_review_of_3_mib_is_still_answered(server: RunningServer) -> None:
    data = padded_review(MAX_BODY_BYTES - 40 * 1024, "large")
    assert MAX_BODY_BYTES - 64 * 1024 < len(data) <= MAX_BODY_BYTES
    conn = server.connect(timeout=THREAD_IO_SECONDS)
    status, body, _ = post(conn, "/validate?timeout=10s", data)
    assert (status, body["response"]["uid"]) == (200, "large")
    conn.close()


def _send_what_fits(sock: ssl.SSLSocket, size: int) -> int:
    """Send up to `size` bytes without blocking; how many went."""
    sent, block = 0, b"y" * 65536
    while sent < size:
        try:
            sent += sock.send(block[:size - sent])
        except (ssl.SSLWantWriteError, BlockingIOError):
            break
    return sent


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")
