"""Start the real `airflow-pod-webhook serve` (gunicorn, TLS, generated certs) for a test."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SVC_NAME = "airflow-pod-webhook.airflow-pod-webhook.svc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_command() -> list[str]:
    """The installed console script when there is one, else `python -m webhook`."""
    script = Path(sys.executable).parent / "airflow-pod-webhook"
    return [str(script)] if script.exists() else [sys.executable, "-m", "webhook"]


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, server_hostname: str, context: ssl.SSLContext,
                 timeout: float) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self.server_hostname = server_hostname
        self.tls = context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.server_hostname)


@dataclass
class RunningServer:
    process: subprocess.Popen
    port: int
    cert_dir: Path
    policies: Path
    log_path: Path

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        context.check_hostname = True
        return context

    def connect(self, server_hostname: str = SVC_NAME, timeout: float = 10
                ) -> PinnedHTTPSConnection:
        """Dial 127.0.0.1 but verify the cert for `server_hostname`, exactly as
        kube-apiserver dials the Service's ClusterIP and verifies `<svc>.<ns>.svc`."""
        return PinnedHTTPSConnection("127.0.0.1", self.port, server_hostname,
                                     self.tls_context(), timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def decision_lines(self) -> list[dict]:
        """The decision log so far, one dict per admission."""
        lines = [json.loads(line) for line in self.log().splitlines()
                 if line.startswith('{"time"')]
        return [line for line in lines if "decision" in line]

    def wait_for_decisions(self, count: int, deadline: float = 10.0) -> list[dict]:
        """The decision log once it holds `count` lines: a decision is logged just after its
        answer is sent, so a client can read the answer before the line is written."""
        stop = time.monotonic() + deadline
        while True:
            lines = self.decision_lines()
            if len(lines) >= count or time.monotonic() > stop:
                return lines
            time.sleep(0.02)

    def worker_pids(self) -> set[int]:
        """The gunicorn workers: the master's live children."""
        return {pid for pid, ppid, state in _processes()
                if ppid == self.process.pid and state != "Z"}

    def wait_workers(self, count: int, *, exclude: frozenset[int] = frozenset(),
                     deadline: float = 30.0) -> set[int]:
        """Wait until `count` workers run, none of them in `exclude`."""
        stop = time.monotonic() + deadline
        while time.monotonic() < stop:
            pids = self.worker_pids()
            if len(pids) == count and not pids & exclude:
                return pids
            time.sleep(0.05)
        raise RuntimeError(f"workers not {count} in {deadline}s: {self.worker_pids()}\n"
                           f"{self.log()[-4000:]}")

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        """GET over a fresh connection (lands on whichever worker accepts it)."""
        conn = self.connect(timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def metric(self, name: str, **labels: str) -> float:
        """The sum of one metric's samples over all workers (multiprocess /metrics)."""
        return metric_value(self.get("/metrics")[1].decode(), name, **labels)

    def crash_marks(self) -> list[str]:
        """Log lines that mean a worker crashed or a request blew up."""
        marks = ("Traceback", "Worker exiting", "WORKER TIMEOUT", "Exception in worker",
                 "unexpected error", "Logging error")
        return [line for line in self.log().splitlines() if any(m in line for m in marks)]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum the samples of `name` in Prometheus text whose labels include `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                total += sample.value
    return total


def _processes() -> Iterator[tuple[int, int, str]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: parse after the last ")"
        fields = stat[stat.rindex(")") + 2:].split()
        yield int(entry.name), int(fields[1]), fields[0]


def post(connection: http.client.HTTPConnection, path: str, body: object,
         content_type: str = "application/json") -> tuple[int, dict, http.client.HTTPResponse]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    connection.request("POST", path, body=data, headers={"Content-Type": content_type})
    response = connection.getresponse()
    payload = response.read()
    return response.status, json.loads(payload) if payload else {}, response


def wait_ready(server: RunningServer, deadline: float = 30.0) -> None:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        with contextlib.suppress(OSError, ssl.SSLError, http.client.HTTPException):
            conn = server.connect(timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"server not ready in {deadline}s:\n{server.log()}")


@contextlib.contextmanager
def running_server(tmp: Path, policies: Path, *, workers: int = 2,
                   extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
                   port: int | None = None) -> Iterator[RunningServer]:
    port = port or free_port()
    cert_dir = tmp / "certs"
    policy_copy = tmp / "policies"
    if not policy_copy.exists():
        shutil.copytree(policies, policy_copy, ignore=shutil.ignore_patterns("tests"))
    log_path = tmp / "server.log"
    # Each server makes its own metrics folder: a shared one would be wiped under another.
    env = {**{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
           "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*cli_command(), "serve", "--policies", str(policy_copy), "--cert-dir", str(cert_dir),
             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
             "--reload-interval", "0.2", *extra],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = RunningServer(process, port, cert_dir, policy_copy, log_path)
    try:
        wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


class ConfigMapFolder:
    """A folder written the way kubelet's AtomicWriter updates a ConfigMap volume.

    The files live in a timestamped `..<stamp>/` folder; `..data` links to it and each
    top-level file is a symlink into `..data/`. An update writes a new stamped folder, renames
    a `..data_tmp` link over `..data` (the one atomic step), fixes the top-level links and
    removes the old folder.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.generation = 0

    def write(self, files: dict[str, bytes]) -> None:
        self.generation += 1
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.") + f"{self.generation:09d}"
        (self.root / stamp).mkdir()
        for name, data in files.items():
            (self.root / stamp / name).write_bytes(data)
        data_link = self.root / "..data"
        old = os.readlink(data_link) if data_link.is_symlink() else None
        tmp_link = self.root / "..data_tmp"
        tmp_link.symlink_to(stamp)
        os.rename(tmp_link, data_link)
        for name in files:
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")
        for entry in self.root.iterdir():
            if (not entry.name.startswith("..") and entry.is_symlink()
                    and entry.name not in files):
                entry.unlink()
        if old is not None:
            shutil.rmtree(self.root / old)


class GitSyncFolder:
    """A folder written the way git-sync publishes a checkout: `link` is a symlink to the
    current worktree, replaced by renaming a new symlink over it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (self.root / ".worktrees").mkdir(parents=True, exist_ok=True)
        self.generation = 0

    @property
    def link(self) -> Path:
        return self.root / "link"

    def write(self, files: dict[str, bytes]) -> None:
        self.generation += 1
        worktree = self.root / ".worktrees" / f"{self.generation:040x}"
        worktree.mkdir()
        for name, data in files.items():
            (worktree / name).write_bytes(data)
        old = os.readlink(self.link) if self.link.is_symlink() else None
        tmp_link = self.root / "link.tmp"
        tmp_link.symlink_to(worktree.relative_to(self.root))
        os.rename(tmp_link, self.link)
        if old is not None:
            shutil.rmtree(self.root / old)


def policy_files_of(folder: Path) -> dict[str, bytes]:
    """The top-level policy files of a folder, as a ConfigMap's data would hold them."""
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.yaml"))}


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomic replace (temp file + rename), like webhook.cluster.certs.write_certs does."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(data)
    os.replace(tmp, path)
