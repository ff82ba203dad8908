"""The generated CA and serving cert must be accepted by strict verifiers for every name we use."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from webhook.cluster.certs import (
    CertPaths,
    cert_dns_names,
    cert_not_after,
    ensure_dev_certs,
    generate_ca,
    generate_serving_cert,
    write_apiserver_client,
    write_certs,
)

SVC = "airflow-pod-webhook"
NS = "airflow-pod-webhook"
SVC_DNS = f"{SVC}.{NS}.svc"
EXPECTED_DNS = [SVC, f"{SVC}.{NS}", SVC_DNS, f"{SVC}.{NS}.svc.cluster.local", "localhost"]
KEY_TYPES = ["ecdsa", "rsa"]


def load(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


@pytest.fixture(scope="module", params=KEY_TYPES)
def pki(request: pytest.FixtureRequest) -> dict[str, bytes | str]:
    # Module scope: RSA key generation is slow enough to matter across many tests.
    ca_crt, ca_key = generate_ca(key_type=request.param)
    crt, key = generate_serving_cert(ca_crt, ca_key, SVC, NS, key_type=request.param)
    return {"ca_crt": ca_crt, "ca_key": ca_key, "crt": crt, "key": key, "type": request.param}


def test_serving_cert_sans_exactly(pki: dict) -> None:
    cert = load(pki["crt"])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == EXPECTED_DNS
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert cert_dns_names(pki["crt"]) == EXPECTED_DNS


def test_extra_sans_are_appended_and_deduplicated(pki: dict) -> None:
    crt, _ = generate_serving_cert(
        pki["ca_crt"],
        pki["ca_key"],
        SVC,
        NS,
        extra_dns=["webhook.example.com", "localhost"],
        extra_ips=["10.0.0.7", "127.0.0.1"],
    )
    san = load(crt).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [*EXPECTED_DNS, "webhook.example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "::1",
        "10.0.0.7",
    ]


def test_ca_extensions(pki: dict) -> None:
    ca = load(pki["ca_crt"])
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ca.subject == ca.issuer
    key = serialization.load_pem_private_key(pki["ca_key"], None)
    expected = ec.EllipticCurvePrivateKey if pki["type"] == "ecdsa" else rsa.RSAPrivateKey
    assert isinstance(key, expected)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert isinstance(key.curve, ec.SECP256R1)
    else:
        assert key.key_size == 2048


def test_serving_cert_extensions(pki: dict) -> None:
    cert, ca = load(pki["crt"]), load(pki["ca_crt"])
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.issuer == ca.subject


def test_validity_window(pki: dict) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    cert = load(pki["crt"])
    # Backdated for clock skew, but not absurdly.
    assert now - dt.timedelta(hours=1) < cert.not_valid_before_utc < now - dt.timedelta(seconds=30)
    assert cert_not_after(pki["crt"]) == cert.not_valid_after_utc
    assert abs(cert_not_after(pki["crt"]) - (now + dt.timedelta(days=365))) < dt.timedelta(hours=1)
    assert abs(cert_not_after(pki["ca_crt"]) - (now + dt.timedelta(days=3650))) < dt.timedelta(
        hours=1
    )
    assert cert_not_after(pki["crt"]).tzinfo is not None


def test_serving_cert_never_outlives_ca() -> None:
    ca_crt, ca_key = generate_ca(days=10)
    crt, _ = generate_serving_cert(ca_crt, ca_key, SVC, NS, days=365)
    assert cert_not_after(crt) <= cert_not_after(ca_crt)


def test_mismatched_ca_key_is_rejected() -> None:
    ca_crt, _ = generate_ca()
    _, other_key = generate_ca()
    with pytest.raises(ValueError, match="does not belong"):
        generate_serving_cert(ca_crt, other_key, SVC, NS)


def test_unknown_key_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="key_type"):
        generate_ca(key_type="ed25519")


@pytest.mark.parametrize("name", [SVC_DNS, "localhost", f"{SVC}.{NS}.svc.cluster.local"])
def test_verifies_with_cryptography_policy(pki: dict, name: str) -> None:
    # cryptography's verifier follows the CA/B-style webpki profile, stricter than Go's.
    verifier = (
        PolicyBuilder()
        .store(Store([load(pki["ca_crt"])]))
        .build_server_verifier(x509.DNSName(name))
    )
    chain = verifier.verify(load(pki["crt"]), [])
    assert chain[-1] == load(pki["ca_crt"])


def test_verifies_for_loopback_ip(pki: dict) -> None:
    verifier = (
        PolicyBuilder()
        .store(Store([load(pki["ca_crt"])]))
        .build_server_verifier(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    )
    verifier.verify(load(pki["crt"]), [])


def test_wrong_name_and_wrong_ca_fail(pki: dict) -> None:
    store = Store([load(pki["ca_crt"])])
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName("evil.example.com")).verify(
            load(pki["crt"]), []
        )
    other_ca, _ = generate_ca()
    with pytest.raises(VerificationError):
        PolicyBuilder().store(Store([load(other_ca)])).build_server_verifier(
            x509.DNSName(SVC_DNS)
        ).verify(load(pki["crt"]), [])


@contextmanager
def tls_server(cert_file: Path, key_file: Path) -> Iterator[int]:
    """A one-connection-at-a-time TLS echo-less server on 127.0.0.1; yields its port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # what kube-apiserver requires at minimum
    ctx.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                conn.close()  # client rejected us; the test asserts on its side

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def client_context(ca_file: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    # Strict RFC 5280 checks (default from Python 3.13) so we don't pass only by leniency.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def handshake(port: int, ctx: ssl.SSLContext, server_hostname: str) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.recv(2)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_python_ssl_handshake(tmp_path: Path, key_type: str) -> None:
    paths = write_certs(tmp_path, SVC, NS, key_type=key_type)
    ctx = client_context(paths.ca_crt)
    with tls_server(paths.tls_crt, paths.tls_key) as port:
        assert handshake(port, ctx, SVC_DNS) == b"ok"
        assert handshake(port, ctx, "localhost") == b"ok"
        assert handshake(port, ctx, "127.0.0.1") == b"ok"
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(port, ctx, "evil.example.com")
        other = write_certs(tmp_path / "other", SVC, NS)
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(port, client_context(other.ca_crt), SVC_DNS)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_certs_files_and_modes(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    paths = write_certs(out, SVC, NS)
    assert paths == CertPaths.in_dir(out)
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    assert mode(paths.tls_key) == 0o600
    assert mode(paths.ca_key) == 0o600
    assert mode(paths.tls_crt) == 0o644
    assert mode(paths.ca_crt) == 0o644
    assert paths.tls_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert cert_dns_names(paths.tls_crt.read_bytes()) == EXPECTED_DNS


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_renewal_keeps_ca(tmp_path: Path, key_type: str) -> None:
    first = write_certs(tmp_path, SVC, NS, key_type=key_type)
    ca_crt, ca_key = first.ca_crt.read_bytes(), first.ca_key.read_bytes()
    crt1, key1 = first.tls_crt.read_bytes(), first.tls_key.read_bytes()
    second = write_certs(tmp_path, SVC, NS, key_type=key_type)
    assert second.ca_crt.read_bytes() == ca_crt
    assert second.ca_key.read_bytes() == ca_key
    crt2 = second.tls_crt.read_bytes()
    assert crt2 != crt1
    assert second.tls_key.read_bytes() != key1
    assert load(crt2).serial_number != load(crt1).serial_number
    # The already-registered caBundle (the old ca.crt) still verifies the renewed cert.
    PolicyBuilder().store(Store([load(ca_crt)])).build_server_verifier(
        x509.DNSName(SVC_DNS)
    ).verify(load(crt2), [])
    assert mode(second.tls_key) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp files left"


def test_write_certs_refuses_half_a_ca(tmp_path: Path) -> None:
    ca_crt, _ = generate_ca()
    (tmp_path / "ca.crt").write_bytes(ca_crt)
    with pytest.raises(FileNotFoundError, match=r"ca\.key"):
        write_certs(tmp_path, SVC, NS)
    assert not (tmp_path / "tls.crt").exists()


def test_ensure_dev_certs_generates_then_reuses(tmp_path: Path) -> None:
    paths, generated = ensure_dev_certs(tmp_path / "certs")
    assert generated
    crt = paths.tls_crt.read_bytes()
    again, generated_again = ensure_dev_certs(tmp_path / "certs")
    assert not generated_again
    assert again == paths
    assert again.tls_crt.read_bytes() == crt


def test_ensure_dev_certs_uses_mounted_pair_without_ca_key(tmp_path: Path) -> None:
    # Like a cert-manager Secret mount: tls.crt, tls.key, ca.crt and no ca.key.
    ca_crt, ca_key = generate_ca()
    crt, key = generate_serving_cert(ca_crt, ca_key, SVC, NS)
    for name, data in {"tls.crt": crt, "tls.key": key, "ca.crt": ca_crt}.items():
        (tmp_path / name).write_bytes(data)
    paths, generated = ensure_dev_certs(tmp_path)
    assert not generated
    assert paths.tls_crt.read_bytes() == crt
    assert not paths.ca_key.exists()


def test_ensure_dev_certs_refuses_half_a_pair(tmp_path: Path) -> None:
    ca_crt, ca_key = generate_ca()
    crt, _ = generate_serving_cert(ca_crt, ca_key, SVC, NS)
    (tmp_path / "tls.crt").write_bytes(crt)
    with pytest.raises(FileNotFoundError, match=r"tls\.key"):
        ensure_dev_certs(tmp_path)


def test_apiserver_client_files_for_mutual_tls(tmp_path: Path) -> None:
    """`certs --apiserver-client`: a client CA for `serve --client-ca`, kube-apiserver's
    client cert from it, the kubeconfig naming it for the webhook's host only, and the
    AdmissionConfiguration both webhook plugins read it from."""
    paths = write_apiserver_client(tmp_path, ["airflow-pod-webhook.airflow-pod-webhook.svc",
                                              "127.0.0.1:8443"], "/etc/k8s/admission.yaml")
    ca = x509.load_pem_x509_certificate(paths.client_ca.read_bytes())
    cert = x509.load_pem_x509_certificate(paths.client_cert.read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    config = yaml.safe_load(paths.kubeconfig.read_text())
    assert [u["name"] for u in config["users"]] == [
        "airflow-pod-webhook.airflow-pod-webhook.svc", "127.0.0.1:8443"]  # never "*"
    assert base64.b64decode(config["users"][0]["user"]["client-certificate-data"]) == \
        paths.client_cert.read_bytes()
    assert oct(paths.kubeconfig.stat().st_mode & 0o777) == "0o600"  # it holds the key
    assert yaml.safe_load(paths.admission_configuration.read_text()) == {
        "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
        "plugins": [{"name": name, "configuration": {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "WebhookAdmissionConfiguration",
            "kubeConfigFile": "/etc/k8s/admission.yaml"}}
            for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")]}
    first_ca, first_cert = paths.client_ca.read_bytes(), paths.client_cert.read_bytes()
    again = write_apiserver_client(tmp_path, ["h"], "/x")  # renewal keeps the client CA
    assert again.client_ca.read_bytes() == first_ca
    assert again.client_cert.read_bytes() != first_cert
