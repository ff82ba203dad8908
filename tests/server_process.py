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
                   extra: tuple[str, ...] = ()) -> Iterator[RunningServer]:
    port = free_port()
    cert_dir = tmp / "certs"
    policy_copy = tmp / "policies"
    if not policy_copy.exists():
        shutil.copytree(policies, policy_copy, ignore=shutil.ignore_patterns("tests"))
    log_path = tmp / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
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
