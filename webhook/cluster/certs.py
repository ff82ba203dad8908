"""TLS material for the webhook: a small private CA and a serving cert kube-apiserver accepts.

kube-apiserver verifies the webhook with Go crypto/x509 against `ServerName=<svc>.<ns>.svc` and the
`caBundle` of the webhook configuration; the Common Name is never used, so everything that matters
is in the SANs. The pure functions work on PEM bytes; only `write_certs`/`ensure_dev_certs` touch
the file system, using the file names of a cert-manager TLS Secret (tls.crt, tls.key, ca.crt).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "KEY_TYPES",
    "TLS_CERT",
    "TLS_KEY",
    "CertPaths",
    "cert_dns_names",
    "cert_not_after",
    "ensure_dev_certs",
    "generate_ca",
    "generate_serving_cert",
    "service_dns_names",
    "write_certs",
]

TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"

KEY_TYPES = ("ecdsa", "rsa")
# Backdate not-before so an apiserver whose clock lags a little still accepts a fresh cert.
CLOCK_SKEW = dt.timedelta(minutes=5)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"key_type must be one of {KEY_TYPES}, got {key_type!r}")


def _key_pem(key: PrivateKey) -> bytes:
    # PKCS#8 without a passphrase: what Go, OpenSSL and cert-manager Secrets all read.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _check_days(days: int) -> None:
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")


def generate_ca(
    common_name: str = "airflow-pod-webhook-ca", days: int = 3650, key_type: str = "ecdsa"
) -> tuple[bytes, bytes]:
    """Create a self-signed CA that may only sign leaf certs. Returns (cert PEM, key PEM)."""
    _check_days(days)
    key = _new_key(key_type)
    now = _now()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        # path_length=0: this CA signs serving certs only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        # Strict verifiers (OpenSSL X509_STRICT, webpki) expect AKI on every cert, roots included.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def service_dns_names(service: str, namespace: str) -> list[str]:
    """Every name a client may use for the Service; the apiserver itself uses `<svc>.<ns>.svc`."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def generate_serving_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    service: str,
    namespace: str,
    days: int = 365,
    key_type: str = "ecdsa",
    extra_dns: Sequence[str] = (),
    extra_ips: Sequence[str] = (),
) -> tuple[bytes, bytes]:
    """Sign a serving cert for the webhook Service with the given CA. Returns (cert PEM, key PEM).

    SANs: the four Service DNS forms, `localhost`, 127.0.0.1 and ::1 (local runs and probes),
    then `extra_dns`/`extra_ips` (e.g. a node IP for a `url`-based registration).
    """
    _check_days(days)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError("CA key must be an ECDSA or RSA private key")
    if ca_key.public_key().public_numbers() != ca_cert.public_key().public_numbers():
        raise ValueError("CA key does not belong to the CA certificate")
    now = _now()
    if ca_cert.not_valid_after_utc <= now:
        raise ValueError(
            f"CA certificate expired at {ca_cert.not_valid_after_utc.isoformat()}; "
            "remove ca.crt/ca.key to create a new CA (and update every caBundle)"
        )

    key = _new_key(key_type)
    dns_names = _dedupe([*service_dns_names(service, namespace), "localhost", *extra_dns])
    ips = _dedupe(["127.0.0.1", "::1", *extra_ips])
    san = x509.SubjectAlternativeName(
        [x509.DNSName(name) for name in dns_names]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    )
    try:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        )
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    # A leaf must not outlive its CA: verifiers reject the chain from that point anyway.
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        # The CN is informational only; Go ignores it and matches the SANs.
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{service}.{namespace}.svc")])
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key exchange needs keyEncipherment; ECDSA keys never encipher.
                key_encipherment=key_type == "rsa",
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def cert_not_after(pem: bytes) -> dt.datetime:
    """Expiry (timezone-aware UTC) of the first certificate in `pem`."""
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc


def cert_dns_names(pem: bytes) -> list[str]:
    """DNS SANs of the first certificate in `pem`, in order ([] when it has no SAN)."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)


@dataclass(frozen=True)
class CertPaths:
    """Where the four PEM files live; names match a cert-manager TLS Secret plus ca.key."""

    directory: Path
    tls_crt: Path
    tls_key: Path
    ca_crt: Path
    ca_key: Path

    @classmethod
    def in_dir(cls, directory: Path | str) -> CertPaths:
        d = Path(directory)
        return cls(d, d / TLS_CERT, d / TLS_KEY, d / CA_CERT, d / CA_KEY)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # Temp file in the same directory + os.replace: readers never see a half-written PEM.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_certs(
    out_dir: Path, service: str, namespace: str, key_type: str = "ecdsa", days: int = 365
) -> CertPaths:
    """Write tls.crt/tls.key signed by the CA in `out_dir`, creating ca.crt/ca.key if absent.

    Re-running renews only the serving cert: the CA is reused so the caBundle already
    registered with the apiserver stays valid.
    """
    paths = CertPaths.in_dir(out_dir)
    paths.directory.mkdir(parents=True, exist_ok=True)
    has_crt, has_key = paths.ca_crt.exists(), paths.ca_key.exists()
    if has_crt and has_key:
        ca_cert_pem, ca_key_pem = paths.ca_crt.read_bytes(), paths.ca_key.read_bytes()
    elif has_crt or has_key:
        # Half a CA is someone else's material (e.g. a mounted Secret): never overwrite it.
        missing = paths.ca_key if has_crt else paths.ca_crt
        raise FileNotFoundError(f"{missing} is missing; provide both ca.crt and ca.key or neither")
    else:
        ca_cert_pem, ca_key_pem = generate_ca(key_type=key_type)
        _write_atomic(paths.ca_key, ca_key_pem, 0o600)
        _write_atomic(paths.ca_crt, ca_cert_pem, 0o644)
    cert_pem, key_pem = generate_serving_cert(
        ca_cert_pem, ca_key_pem, service, namespace, days=days, key_type=key_type
    )
    # Key first: a reader racing us then fails on a key/cert mismatch rather than an old key.
    _write_atomic(paths.tls_key, key_pem, 0o600)
    _write_atomic(paths.tls_crt, cert_pem, 0o644)
    return paths


def ensure_dev_certs(
    cert_dir: Path,
    service: str = "airflow-pod-webhook",
    namespace: str = "airflow-pod-webhook",
) -> tuple[CertPaths, bool]:
    """Use tls.crt/tls.key from `cert_dir` if present, else generate a dev CA + serving cert.

    Returns (paths, generated_now). Half a pair is an error rather than silently replaced,
    because it means real material was mounted incompletely.
    """
    paths = CertPaths.in_dir(cert_dir)
    has_crt, has_key = paths.tls_crt.exists(), paths.tls_key.exists()
    if has_crt and has_key:
        return paths, False
    if has_crt or has_key:
        missing = paths.tls_key if has_crt else paths.tls_crt
        raise FileNotFoundError(
            f"{missing} is missing; provide both tls.crt and tls.key or neither"
        )
    return write_certs(paths.directory, service, namespace), True


# --- mutual TLS: kube-apiserver's client certificate ----------------------------------------

CLIENT_CA_CERT = "client-ca.crt"
CLIENT_CA_KEY = "client-ca.key"
APISERVER_CLIENT_CERT = "apiserver-client.crt"
APISERVER_CLIENT_KEY = "apiserver-client.key"
ADMISSION_KUBECONFIG = "admission-kubeconfig.yaml"
ADMISSION_CONFIGURATION = "admission-configuration.yaml"
APISERVER_CLIENT_CN = "kube-apiserver-admission"


def generate_client_cert(ca_cert_pem: bytes, ca_key_pem: bytes,
                         common_name: str = APISERVER_CLIENT_CN, days: int = 365,
                         key_type: str = "ecdsa") -> tuple[bytes, bytes]:
    """A client certificate (extendedKeyUsage clientAuth only) signed by the client CA."""
    _check_days(days)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError("client CA key must be an ECDSA or RSA private key")
    if ca_key.public_key().public_numbers() != ca_cert.public_key().public_numbers():
        raise ValueError("client CA key does not belong to the client CA certificate")
    now = _now()
    key = _new_key(key_type)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False,
            key_encipherment=key_type == "rsa", data_encipherment=False, key_agreement=False,
            key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def admission_kubeconfig(webhook_hosts: Sequence[str], cert_pem: bytes, key_pem: bytes
                         ) -> dict:
    """The kubeconfig kube-apiserver reads to authenticate to webhooks: one user per name a
    webhook is called by (`<service>.<namespace>.svc`, or `host:port` for a `url` with a port
    other than 443). Never `*`: that would hand our certificate to every webhook."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [], "contexts": [],
            "users": [{"name": host, "user": {"client-certificate-data": b64(cert_pem),
                                              "client-key-data": b64(key_pem)}}
                      for host in webhook_hosts]}


def admission_configuration(kubeconfig_path: str) -> dict:
    """kube-apiserver's --admission-control-config-file: both webhook plugins read
    `kubeconfig_path` for the credentials they present to webhooks."""
    webhook_config = {"apiVersion": "apiserver.config.k8s.io/v1",
                      "kind": "WebhookAdmissionConfiguration",
                      "kubeConfigFile": kubeconfig_path}
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
            "plugins": [{"name": name, "configuration": webhook_config}
                        for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")]}


@dataclass(frozen=True)
class ClientAuthPaths:
    client_ca: Path
    client_cert: Path
    client_key: Path
    kubeconfig: Path
    admission_configuration: Path


def write_apiserver_client(out_dir: Path, webhook_hosts: Sequence[str],
                           kubeconfig_path: str, key_type: str = "ecdsa", days: int = 365
                           ) -> ClientAuthPaths:
    """In `out_dir`: a client CA (kept when present: the webhook trusts it), kube-apiserver's
    client cert signed by it, the kubeconfig naming it for the webhook's host names, and the
    AdmissionConfiguration pointing at that kubeconfig where the API server will read it
    (`kubeconfig_path`, a path on the control-plane host)."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key = directory / CLIENT_CA_CERT, directory / CLIENT_CA_KEY
    if ca_crt.exists() and ca_key.exists():
        ca_cert_pem, ca_key_pem = ca_crt.read_bytes(), ca_key.read_bytes()
    elif ca_crt.exists() or ca_key.exists():
        missing = ca_key if ca_crt.exists() else ca_crt
        raise FileNotFoundError(f"{missing} is missing; provide both {CLIENT_CA_CERT} and "
                                f"{CLIENT_CA_KEY} or neither")
    else:
        ca_cert_pem, ca_key_pem = generate_ca("airflow-pod-webhook-client-ca",
                                              key_type=key_type)
        _write_atomic(ca_key, ca_key_pem, 0o600)
        _write_atomic(ca_crt, ca_cert_pem, 0o644)
    cert_pem, key_pem = generate_client_cert(ca_cert_pem, ca_key_pem, days=days,
                                             key_type=key_type)
    paths = ClientAuthPaths(ca_crt, directory / APISERVER_CLIENT_CERT,
                            directory / APISERVER_CLIENT_KEY, directory / ADMISSION_KUBECONFIG,
                            directory / ADMISSION_CONFIGURATION)
    _write_atomic(paths.client_key, key_pem, 0o600)
    _write_atomic(paths.client_cert, cert_pem, 0o644)
    _write_atomic(paths.kubeconfig, yaml.safe_dump(
        admission_kubeconfig(webhook_hosts, cert_pem, key_pem), sort_keys=False).encode(), 0o600)
    _write_atomic(paths.admission_configuration, yaml.safe_dump(
        admission_configuration(kubeconfig_path), sort_keys=False).encode(), 0o644)
    return paths
