"""etcd + kube-apiserver on loopback, started the way controller-runtime's envtest starts them.

Source followed: kubernetes-sigs/controller-runtime `pkg/internal/testing/controlplane/`
(apiserver.go `defaultArgs`/`populateAPIServerCerts`, etcd.go `defaultArgs`, auth.go
`CertAuthn`, plane.go `Start`) and `pkg/envtest/server.go` (binaries from KUBEBUILDER_ASSETS,
KUBEBUILDER_CONTROLPLANE_START_TIMEOUT, default 20 s per component).

Differences, on purpose: the admin user is provisioned before start (envtest does it right
after), the webhook admission plugins are named in --enable-admission-plugins (they are on by
default; naming them makes the test's premise explicit), and readiness is GET /readyz with the
admin client cert, verified against the serving CA (envtest polls /healthz without verifying),
so "ready" includes the RBAC bootstrap roles and the webhook/CRD informers.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.server_process import free_port
from webhook.cluster.certs import generate_ca, generate_serving_cert

APISERVER, ETCD = "kube-apiserver", "etcd"
DEFAULT_START_TIMEOUT = 20.0  # controller-runtime's default per component
STOP_TIMEOUT = 20.0
ADMIN_USER, ADMIN_GROUP = "envtest-admin", "system:masters"
# File names as controller-runtime writes them into the API server's --cert-dir.
SERVING_CERT, SERVING_KEY = "apiserver.crt", "apiserver.key"
SA_CERT, SA_KEY = "sa-signer.crt", "sa-signer.key"
CLIENT_CA = "client-cert-auth-ca.crt"


class ControlPlaneError(RuntimeError):
    """A control-plane step failed; the message says which and shows the process output."""


def start_timeout() -> float:
    value = os.environ.get("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT", "")
    if not value:
        return DEFAULT_START_TIMEOUT
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", value.strip())
    if not match:
        raise ControlPlaneError(
            f"KUBEBUILDER_CONTROLPLANE_START_TIMEOUT={value!r}: use a duration such as 60s")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60}[unit]


def missing_binaries(assets: Path) -> list[str]:
    """Which of kube-apiserver and etcd are absent or not executable in `assets`."""
    return [name for name in (APISERVER, ETCD)
            if not os.access(assets / name, os.X_OK) or not (assets / name).is_file()]


def binary_has_flag(binary: Path, flag: str) -> bool:
    """controller-runtime's CheckFlag: is `--flag` listed in `binary --help`?"""
    try:
        result = subprocess.run([str(binary), "--help"], capture_output=True, text=True,
                                timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ControlPlaneError(f"cannot run {binary} --help: {exc}") from exc
    return re.search(rf"(?m)^\s*--{re.escape(flag)}\b", result.stdout + result.stderr) is not None


# --- flags ----------------------------------------------------------------------------------


def etcd_args(data_dir: Path, client_port: int, peer_port: int,
              unsafe_no_fsync: bool) -> list[str]:
    """etcd.go defaultArgs: loopback client and peer URLs and a throw-away data dir."""
    client_url = f"http://127.0.0.1:{client_port}"
    args = [
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
    ]
    if unsafe_no_fsync:  # etcd >= 3.5; envtest checks `etcd --help` for it
        args.append("--unsafe-no-fsync=true")
    return args


def apiserver_args(cert_dir: Path, etcd_port: int, secure_port: int) -> list[str]:
    """apiserver.go defaultArgs + auth.go CertAuthn.Configure, for Kubernetes >= 1.24."""
    return [
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        # The serving pair is read from <cert-dir>/apiserver.{crt,key}, written beforehand
        # so we know the CA that signed it.
        f"--cert-dir={cert_dir}",
        f"--secure-port={secure_port}",
        "--bind-address=127.0.0.1",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        # No controller-manager creates the `default` ServiceAccounts, so envtest turns the
        # plugin off rather than make every pod name an existing ServiceAccount.
        "--disable-admission-plugins=ServiceAccount",
        "--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
        "--authorization-mode=RBAC",
        f"--service-account-issuer=https://127.0.0.1:{secure_port}/",
        f"--service-account-key-file={cert_dir / SA_CERT}",
        f"--service-account-signing-key-file={cert_dir / SA_KEY}",
        # Client certificates signed by this CA authenticate: CN = user, O = groups.
        f"--client-ca-file={cert_dir / CLIENT_CA}",
    ]


# --- certificates ----------------------------------------------------------------------------


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def client_cert(ca_cert_pem: bytes, ca_key_pem: bytes, user: str, groups: list[str],
                days: int = 1) -> tuple[bytes, bytes]:
    """A client cert kube-apiserver maps to `user` in `groups` (CN and O, as tinyca does)."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user),
                         *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                     False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


@dataclass(frozen=True)
class ControlPlaneCerts:
    serving_ca: bytes  # verifies the API server (kubeconfig certificate-authority-data)
    admin_cert: bytes
    admin_key: bytes


def write_control_plane_certs(cert_dir: Path) -> ControlPlaneCerts:
    """apiserver.go populateAPIServerCerts + auth.go CertAuthn.Start, into `cert_dir`."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    serving_ca, serving_ca_key = generate_ca("envtest-serving-ca", days=2)
    # SANs include localhost, 127.0.0.1 and ::1, which is all a loopback API server needs.
    serving_cert, serving_key = generate_serving_cert(serving_ca, serving_ca_key, "kubernetes",
                                                      "default", days=1)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_ca, client_ca_key = generate_ca("envtest-client-ca", days=2)
    admin_cert, admin_key = client_cert(client_ca, client_ca_key, ADMIN_USER, [ADMIN_GROUP])
    files = {
        SERVING_CERT: serving_cert,
        SERVING_KEY: serving_key,
        SA_KEY: _pem_key(sa_key),
        # Public half for verifying tokens; a PUBLIC KEY block is what --help documents.
        SA_CERT: sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        CLIENT_CA: client_ca,
    }
    for name, data in files.items():
        path = cert_dir / name
        path.write_bytes(data)
        path.chmod(0o600)
    return ControlPlaneCerts(serving_ca, admin_cert, admin_key)


def kubeconfig(server: str, certs: ControlPlaneCerts, name: str = "envtest") -> dict:
    """A kubeconfig for the admin user, everything inline (no files to keep around)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server, "certificate-authority-data": b64(certs.serving_ca)}}],
        "users": [{"name": ADMIN_USER, "user": {
            "client-certificate-data": b64(certs.admin_cert),
            "client-key-data": b64(certs.admin_key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": ADMIN_USER}}],
        "current-context": name,
    }


def write_kubeconfig(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# --- processes -------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=timeout)


def launch(name: str, argv: list[str], log_path: Path) -> Process:
    with open(log_path, "wb") as log:
        try:
            popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        except OSError as exc:
            raise ControlPlaneError(f"cannot start {name} ({argv[0]}): {exc}") from exc
    return Process(name, popen, log_path)


def _opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    # No proxies: urllib would send even loopback requests to $HTTPS_PROXY without $NO_PROXY.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                       urllib.request.HTTPSHandler(context=context))


def wait_http_ok(process: Process, url: str, timeout: float,
                 context: ssl.SSLContext | None = None) -> None:
    """Poll `url` every 100 ms until it answers 200, the process exits, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise ControlPlaneError(
                f"{process.name} exited with code {process.popen.returncode} before {url} "
                f"answered 200; its last output:\n{process.tail()}")
        try:
            with _opener(context).open(url, timeout=2) as response:
                body = response.read(200).decode(errors="replace")
                if response.status == 200:
                    return
                last = f"HTTP {response.status}: {body}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
        except (OSError, ssl.SSLError) as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise ControlPlaneError(
        f"{process.name} not ready: {url} did not answer 200 within {timeout:.0f}s "
        f"(last: {last}); raise KUBEBUILDER_CONTROLPLANE_START_TIMEOUT if the machine is slow. "
        f"Its last output:\n{process.tail()}")


def admin_ssl_context(certs: ControlPlaneCerts, workdir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=certs.serving_ca.decode("ascii"))
    cert_file, key_file = workdir / "admin.crt", workdir / "admin.key"
    cert_file.write_bytes(certs.admin_cert)
    key_file.write_bytes(certs.admin_key)
    key_file.chmod(0o600)
    context.load_cert_chain(cert_file, key_file)
    return context


class EnvtestControlPlane:
    """Start etcd then kube-apiserver from `assets`; stop in reverse order."""

    def __init__(self, assets: Path, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        self.assets, self.workdir = Path(assets), Path(workdir)
        self.extra_args = list(extra_args)  # more kube-apiserver flags, e.g. an admission config
        self.etcd: Process | None = None
        self.apiserver: Process | None = None
        self.secure_port = 0
        self.kubeconfig_path = self.workdir / "kubeconfig"
        self.certs: ControlPlaneCerts | None = None

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.secure_port}"

    def start(self) -> None:
        missing = missing_binaries(self.assets)
        if missing:
            raise ControlPlaneError(f"KUBEBUILDER_ASSETS={self.assets} lacks {', '.join(missing)}"
                                    " (run: setup-envtest use -p path 1.36.x)")
        timeout = start_timeout()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_etcd(timeout)
            self._start_apiserver(timeout)
        except BaseException:
            self.stop()
            raise

    def _start_etcd(self, timeout: float) -> None:
        etcd = self.assets / ETCD
        client_port, peer_port = free_port(), free_port()
        data_dir = self.workdir / "etcd-data"
        data_dir.mkdir(exist_ok=True)
        args = etcd_args(data_dir, client_port, peer_port,
                         binary_has_flag(etcd, "unsafe-no-fsync"))
        self.etcd = launch(ETCD, [str(etcd), *args], self.workdir / "etcd.log")
        self.etcd_port = client_port
        wait_http_ok(self.etcd, f"http://127.0.0.1:{client_port}/health", timeout)

    def _start_apiserver(self, timeout: float) -> None:
        cert_dir = self.workdir / "apiserver-certs"
        self.certs = write_control_plane_certs(cert_dir)
        self.secure_port = free_port()
        args = [*apiserver_args(cert_dir, self.etcd_port, self.secure_port), *self.extra_args]
        self.apiserver = launch(APISERVER, [str(self.assets / APISERVER), *args],
                                self.workdir / "kube-apiserver.log")
        write_kubeconfig(self.kubeconfig_path, kubeconfig(self.server, self.certs))
        wait_http_ok(self.apiserver, f"{self.server}/readyz", timeout,
                     admin_ssl_context(self.certs, self.workdir))

    def stop(self) -> None:
        for process in (self.apiserver, self.etcd):
            if process is not None:
                process.stop()
