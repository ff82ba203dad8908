"""The load generator: kube-apiserver's calls, from processes of their own.

Each load process holds a few kept-alive HTTP/1.1 connections over TLS (verified for the
Service name, like kube-apiserver), one thread per connection, and sends precomputed request
bytes, so almost all of its time is spent waiting on the server.

- Fixed rate (open loop): request i is due at start + i / rate, whatever happened before it.
  A connection takes the next due request when it is free; latency runs from the due time to
  the last byte of the answer, so time spent queued behind a slow answer is counted (no
  coordinated omission).
- Saturation (closed loop): every connection sends its next request as soon as the previous
  answer is in; throughput is answers per second.
Every loop stops by itself: at the phase's deadline, after a hard cap of requests, and on the
first broken connection.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import resource
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.reviews import SVC_HOST, Request

RECV_BYTES = 65536
IO_TIMEOUT = 15.0
DRAIN_SECONDS = 10.0  # how long queued open-loop requests may still finish after the deadline


@dataclass(frozen=True)
class Target:
    port: int
    cafile: Path
    host: str = "127.0.0.1"
    server_hostname: str = SVC_HOST
    certfile: Path | None = None  # a client certificate (kube-apiserver's own clients)
    keyfile: Path | None = None


@dataclass(frozen=True)
class Phase:
    duration: float
    connections: int
    processes: int
    rate: float | None = None  # reviews per second in all; None: saturation
    max_requests: int = 1_000_000
    cpus: tuple[int, ...] | None = None  # pin the load processes here
    ok_status: int = 200  # what a successful answer is: its status and a marker in its body
    ok_marker: bytes = b'"allowed":true'


@dataclass
class ProcessResult:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # label -> seconds
    errors: int = 0
    denied: int = 0
    error_text: str = ""
    elapsed: float = 0.0
    cpu_seconds: float = 0.0


class ConnectionBroken(Exception):
    pass


def open_connection(target: Target) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(target.cafile))
    context.set_alpn_protocols(["http/1.1"])  # what kube-apiserver offers: HTTP/1.1 only
    if target.certfile is not None:
        context.load_cert_chain(target.certfile, target.keyfile)
    raw = socket.create_connection((target.host, target.port), timeout=IO_TIMEOUT)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's net.Dial does
    return context.wrap_socket(raw, server_hostname=target.server_hostname)


def round_trip(sock: ssl.SSLSocket, data: bytes) -> tuple[int, bytes]:
    """Send one request; read exactly one response, framed by Content-Length (as gunicorn
    sends) or chunked (as Go's net/http sends a body above 2 KiB, e.g. kube-apiserver's)."""
    sock.sendall(data)
    buffer = b""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            break
        buffer += _recv(sock)
    head, body = buffer[:end], buffer[end + 4:]
    status = int(head[9:12])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and value.strip().lower() == b"chunked":
            chunked = True
    if chunked:
        body = _read_chunked(sock, body)
    elif length is None:
        raise ConnectionBroken("response without Content-Length")
    else:
        while len(body) < length:
            body += _recv(sock)
    if b"connection: close" in head.lower():
        raise ConnectionBroken("server asked to close a kept-alive connection")
    return status, body


def _recv(sock: ssl.SSLSocket) -> bytes:
    chunk = sock.recv(RECV_BYTES)
    if not chunk:
        raise ConnectionBroken("server closed the connection")
    return chunk


def _read_chunked(sock: ssl.SSLSocket, buffer: bytes) -> bytes:
    """The body of a chunked response whose first bytes are `buffer` (no trailers expected)."""
    body = b""
    while True:
        while b"\r\n" not in buffer:
            buffer += _recv(sock)
        size_line, _, buffer = buffer.partition(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        while len(buffer) < size + 2:
            buffer += _recv(sock)
        if size == 0:
            return body
        body += buffer[:size]
        buffer = buffer[size + 2:]


def _drive(target: Target, phase: Phase, requests: list[Request], index: int,
           start_at: float) -> ProcessResult:
    """One load process: `phase.connections` threads, each on its own connection."""
    if phase.cpus:
        os.sched_setaffinity(0, phase.cpus)
    result = ProcessResult()
    lock = threading.Lock()
    # Each thread dials its connection when its first request is due and sends it at once,
    # as Go's transport does; the handshake is counted in that first request's latency.
    sockets: list[ssl.SSLSocket] = []
    counter = itertools.count()  # next() on a count is atomic under the GIL
    per_process_rate = phase.rate / phase.processes if phase.rate else None
    cap = phase.max_requests // phase.processes
    deadline = start_at + phase.duration
    usage_before = resource.getrusage(resource.RUSAGE_SELF)

    def worker() -> None:
        local: dict[str, list[float]] = {}
        errors = denied = 0
        text = ""
        sock = None
        try:
            while True:
                i = next(counter)
                if i >= cap:
                    break
                if per_process_rate:
                    due = start_at + (i * phase.processes + index) / phase.rate  # interleaved
                    if due >= deadline:
                        break
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    elif time.perf_counter() > deadline + DRAIN_SECONDS:
                        break
                else:
                    due = time.perf_counter()
                    if due >= deadline:
                        break
                request = requests[(i * phase.processes + index) % len(requests)]
                if sock is None:
                    sock = open_connection(target)
                    with lock:
                        sockets.append(sock)
                status, body = round_trip(sock, request.data)
                if request.follow_up and status == phase.ok_status:
                    # a pod create with both hooks: the validating call after the mutating one
                    status, body = round_trip(sock, request.follow_up)
                done = time.perf_counter()
                if status != phase.ok_status:
                    errors += 1
                    text = text or f"HTTP {status}: {body[:200]!r}"
                    continue
                if phase.ok_marker not in body:
                    denied += 1
                    text = text or f"denied: {body[:300]!r}"
                local.setdefault(request.hook, []).append(done - due)
        except (OSError, ConnectionBroken, ValueError) as exc:
            errors += 1
            text = text or f"{type(exc).__name__}: {exc}"
        with lock:
            for label, values in local.items():
                result.latencies.setdefault(label, []).extend(values)
            result.errors += errors
            result.denied += denied
            result.error_text = result.error_text or text

    now = time.perf_counter()
    if start_at > now:
        time.sleep(start_at - now)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(phase.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(phase.duration + DRAIN_SECONDS + IO_TIMEOUT + 5)
    result.elapsed = time.perf_counter() - start_at
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.cpu_seconds = (usage.ru_utime - usage_before.ru_utime
                          + usage.ru_stime - usage_before.ru_stime)
    for sock in sockets:
        sock.close()
    return result


def _child(connection: multiprocessing.connection.Connection, target: Target, phase: Phase,
           requests: list[Request], index: int, start_delay: float) -> None:
    try:
        # perf_counter is CLOCK_MONOTONIC on Linux: the same clock in every process.
        start_at = time.perf_counter() + start_delay
        connection.send(_drive(target, phase, requests, index, start_at))
    except Exception as exc:  # reported, not raised: the parent prints it
        connection.send(ProcessResult(errors=1, error_text=f"{type(exc).__name__}: {exc}"))
    finally:
        connection.close()


@dataclass
class PhaseResult:
    latencies: dict[str, list[float]]
    completed: int
    errors: int
    denied: int
    error_text: str
    elapsed: float
    load_cpu_seconds: float


def run_phase(target: Target, phase: Phase, requests: list[Request]) -> PhaseResult:
    """Run one phase in `phase.processes` fresh processes; gather their latencies."""
    context = multiprocessing.get_context("fork")  # the requests are inherited, not pickled
    pipes, processes = [], []
    start_delay = 0.1  # every load process forked and ready before t=0
    for index in range(phase.processes):
        parent_end, child_end = context.Pipe(duplex=False)
        process = context.Process(target=_child, daemon=True,
                                  args=(child_end, target, phase, requests, index, start_delay))
        process.start()
        child_end.close()
        pipes.append(parent_end)
        processes.append(process)
    merged = PhaseResult({}, 0, 0, 0, "", 0.0, 0.0)
    limit = time.monotonic() + start_delay + phase.duration + DRAIN_SECONDS + IO_TIMEOUT + 15
    for pipe, process in zip(pipes, processes, strict=True):
        if pipe.poll(max(0.0, limit - time.monotonic())):
            part: ProcessResult = pipe.recv()
        else:
            part = ProcessResult(errors=1, error_text="load process did not report in time")
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
        for label, values in part.latencies.items():
            merged.latencies.setdefault(label, []).extend(values)
        merged.errors += part.errors
        merged.denied += part.denied
        merged.error_text = merged.error_text or part.error_text
        merged.elapsed = max(merged.elapsed, part.elapsed)
        merged.load_cpu_seconds += part.cpu_seconds
    merged.completed = sum(len(v) for v in merged.latencies.values())
    return merged
