"""Start the real server (or a variant under the very same gunicorn settings), time it to
ready, and read its footprint and CPU time from /proc."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.load import Target, open_connection

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def webhook_command() -> list[str]:
    """The installed console script, exactly what the container runs."""
    script = Path(sys.executable).parent / "airflow-pod-webhook"
    return [str(script)] if script.exists() else [sys.executable, "-m", "webhook"]


@dataclass(frozen=True)
class ServerSpec:
    """What to serve: `webhook` (the real `serve`) or `ceiling` (bench.variant)."""

    kind: str
    policies: Path
    cert_dir: Path
    workers: int
    threads: int
    log_level: str = "info"
    cpus: tuple[int, ...] | None = None
    extra_args: tuple[str, ...] = ()


@dataclass
class Server:
    spec: ServerSpec
    process: subprocess.Popen
    target: Target
    log_path: Path
    ready_seconds: float = 0.0

    @property
    def target_url(self) -> str:
        """What kube-apiserver is given (by `url`) to reach this server."""
        return f"https://{self.target.host}:{self.target.port}"

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU of the master and its workers, from /proc/<pid>/stat."""
        return sum(process_cpu_seconds(pid) for pid in [self.process.pid, *self.worker_pids()])

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def children_of(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            # The command name may hold spaces or parens: fields start after the last ')'.
            if int(stat[stat.rindex(")") + 2:].split()[1]) == parent:
                found.append(int(entry))
    return sorted(found)


def process_cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB: RSS counts pages shared with the master after fork, PSS splits them."""
    rss = pss = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def command_for(spec: ServerSpec, port: int) -> list[str]:
    common = ["--policies", str(spec.policies), "--cert-dir", str(spec.cert_dir),
              "--host", "127.0.0.1", "--port", str(port), "--workers", str(spec.workers),
              "--threads", str(spec.threads), "--log-level", spec.log_level]
    if spec.kind == "webhook":
        return [*webhook_command(), "serve", *common]
    return [sys.executable, "-m", "bench.variant", spec.kind, *common, *spec.extra_args]


def is_ready(target: Target) -> bool:
    with contextlib.suppress(OSError, ssl.SSLError, http.client.HTTPException, ValueError):
        sock = open_connection(target)
        try:
            sock.settimeout(2)
            sock.sendall(f"GET /readyz HTTP/1.1\r\nHost: {target.server_hostname}\r\n"
                         "Connection: close\r\n\r\n".encode())
            head = sock.recv(64)
            return head.startswith(b"HTTP/1.1 200")
        finally:
            sock.close()
    return False


@contextlib.contextmanager
def running(spec: ServerSpec, workdir: Path) -> Iterator[Server]:
    """Start the server, wait for the first 200 on /readyz, stop its process group after."""
    port = free_port()
    log_path = workdir / f"server-{spec.kind}-{port}.log"
    target = Target(port=port, cafile=spec.cert_dir / "ca.crt")
    cpus = spec.cpus

    def prepare_child() -> None:
        _stop_with_parent()
        if cpus:
            os.sched_setaffinity(0, cpus)

    with open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command_for(spec, port), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
            preexec_fn=prepare_child)
    server = Server(spec, process, target, log_path)
    try:
        deadline = started + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{spec.kind} server exited early:\n{server.log_tail()}")
            if is_ready(target):
                server.ready_seconds = time.perf_counter() - started
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{spec.kind} server not ready in {READY_TIMEOUT:.0f}s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.01)
        yield server
    finally:
        stop(process)


def _stop_with_parent() -> None:
    """Linux prctl(PR_SET_PDEATHSIG, SIGTERM): a killed bench never leaves a server behind."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the group we started (gunicorn master and workers), SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
