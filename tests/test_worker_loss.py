"""kill -9 a gunicorn worker while reviews stream in over kept-alive connections.

The client behaves like kube-apiserver's Go transport and nothing more: it never retries a
request, but a kept-alive connection the server closed while idle is noticed before the next
request and replaced by a new one (Go's readLoop sees the EOF and drops the connection from
its idle pool). A request that was sent and got no full answer is a failure: kube-apiserver
would report a failed webhook call and apply the failurePolicy.

- Between requests: the worker dies holding idle kept-alive connections. Nothing is lost.
- Mid-request: a worker killed while it processes a request takes that request with it (the
  TCP connection is its own); no server can answer it. That figure is measured and printed:
  at most one request per connection the dead worker held.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.support.admission_reviews import pod_review as review
from tests.support.paths import POLICIES
from tests.support.pods import airflow_pod
from tests.support.server_process import RunningServer, post, running_server

STREAMS = 4
REQUESTS = "airflow_pod_webhook_admission_requests_total"


def socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # gone
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def peer_ports(pid: int) -> set[int]:
    """Remote ports of the TCP connections process `pid` holds (ours are the client side)."""
    inodes = socket_inodes(pid)
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            ports.add(int(fields[2].split(":")[1], 16))
    return ports


class Stream:
    """STREAMS clients, each on one kept-alive connection, pausable between requests."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.sent = self.answered = self.reconnects = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.pause = threading.Event()
        self.paused = threading.Semaphore(0)
        self.resume = threading.Event()
        self.ports: dict[int, int] = {}

    def run(self, index: int) -> None:
        conn, pod, n = None, airflow_pod("airflow3-executor"), 0
        while not self.stop.is_set():
            if self.pause.is_set():
                self.paused.release()
                self.resume.wait()
            if conn is not None and select.select([conn.sock], [], [], 0)[0]:
                conn.close()  # closed by the server while idle: never used, so not a failure
                conn = None
                with self.lock:
                    self.reconnects += 1
            if conn is None:
                conn = self.server.connect()
                conn.connect()
                self.ports[index] = conn.sock.getsockname()[1]
            n += 1
            uid = f"w-{index}-{n}"
            with self.lock:
                self.sent += 1
            try:
                status, body, _ = post(conn, "/mutate?timeout=10s", review(pod, uid=uid))
                ok = status == 200 and body["response"]["uid"] == uid
                problem = "" if ok else f"HTTP {status}: {body!r:.200}"
            except Exception as exc:
                problem = repr(exc)
                conn.close()
                conn = None
            with self.lock:
                if problem:
                    self.failures.append(f"{uid}: {problem}")
                else:
                    self.answered += 1
        if conn is not None:
            conn.close()

    def quiesce(self) -> None:
        self.resume.clear()
        self.pause.set()
        for _ in range(STREAMS):
            assert self.paused.acquire(timeout=30)

    def go_on(self) -> None:
        self.pause.clear()
        self.resume.set()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    with running_server(tmp_path_factory.mktemp("loss"), POLICIES, workers=2) as running:
        yield running


def kill_busiest_worker(server: RunningServer, stream: Stream) -> tuple[int, int]:
    """SIGKILL the worker holding most of our connections: (its pid, connections held)."""
    ours = set(stream.ports.values())
    held = {pid: len(peer_ports(pid) & ours) for pid in server.wait_workers(2)}
    victim = max(held, key=held.get)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    # Wait for its sockets to close, not for it to look dead: the main thread turns zombie
    # while the other threads may still hold the process's files.
    while socket_inodes(victim):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.02)  # the FINs reach the client side of loopback
    return victim, held[victim]


def run_stream(server: RunningServer, kill) -> tuple[Stream, int, int, set[int]]:
    stream = Stream(server)
    threads = [threading.Thread(target=stream.run, args=(i,)) for i in range(STREAMS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        victim, held = kill(stream)
        replaced = server.wait_workers(2, exclude=frozenset({victim}))
        time.sleep(1.5)  # the replacement takes connections too
    finally:
        stream.stop.set()
        stream.go_on()
        for thread in threads:
            thread.join(timeout=30)
    return stream, victim, held, replaced


def test_worker_killed_between_requests_loses_no_review(server: RunningServer) -> None:
    before = server.metric(REQUESTS)

    def kill_while_idle(stream: Stream) -> tuple[int, int]:
        stream.quiesce()
        try:
            return kill_busiest_worker(server, stream)
        finally:
            stream.go_on()

    stream, victim, held, replaced = run_stream(server, kill_while_idle)
    counted = server.metric(REQUESTS) - before
    print(f"\nkill -9 between requests: worker {victim} held {held} of {STREAMS} kept-alive "
          f"connections; {stream.sent} reviews sent, {stream.answered} answered, "
          f"{len(stream.failures)} failures, {stream.reconnects} connections found closed "
          f"before a request and reopened; workers now {sorted(replaced)}; /metrics counts "
          f"{counted:.0f} (the dead worker's counts survive it)")
    assert held >= 1, "the killed worker held none of our connections: nothing was proven"
    assert not stream.failures, stream.failures[:10]
    assert stream.reconnects >= held
    assert victim not in replaced and len(replaced) == 2
    assert counted == stream.sent


def test_worker_killed_mid_stream_loses_at_most_its_requests_in_flight(
        server: RunningServer) -> None:
    stream, victim, held, replaced = run_stream(
        server, lambda stream: kill_busiest_worker(server, stream))
    print(f"\nkill -9 at a random instant: worker {victim} held {held} of {STREAMS} "
          f"connections; {stream.sent} reviews sent, {stream.answered} answered, "
          f"{len(stream.failures)} lost in flight (kube-apiserver: a failed call, so the "
          f"failurePolicy), {stream.reconnects} idle connections reopened; workers now "
          f"{sorted(replaced)}")
    for failure in stream.failures:
        print("  lost:", failure)
    assert len(stream.failures) <= held
    assert stream.answered == stream.sent - len(stream.failures)
    assert victim not in replaced and len(replaced) == 2
