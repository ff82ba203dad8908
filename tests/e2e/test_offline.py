"""What of the e2e suite can be checked without a kube-apiserver: every scenario against the
offline core, the envtest flags, certs and kubeconfig, and the start-up path driven with
stand-in binaries (a real etcd too, when one is installed). Not marked e2e: runs everywhere."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e import envtest, harness
from tests.e2e.envtest import (
    CLIENT_CA,
    SA_CERT,
    SA_KEY,
    SERVING_CERT,
    SERVING_KEY,
    ControlPlaneError,
    EnvtestControlPlane,
    apiserver_args,
    etcd_args,
    kubeconfig,
    write_control_plane_certs,
    write_kubeconfig,
)
from tests.e2e.kind import trust_e2e_namespaces
from tests.e2e.offline_core import admit_offline
from tests.e2e.scenarios import (
    ADMIN,
    BY_NAME,
    DENIED,
    MUTATED,
    SCENARIOS,
    UNTOUCHED,
    Item,
    Scenario,
    build_pod,
    check_pod,
    creator_of,
    denial_prefix,
    lookup,
    scheduler_username,
)
from tests.support.paths import POLICIES
from webhook.cluster.registration import (
    MUTATING_WEBHOOK,
    VALIDATING_WEBHOOK,
    webhook_configurations,
)

NAMESPACE = "airflow-e2e-offline"


def flags(args: list[str]) -> dict[str, str]:
    return dict(a.removeprefix("--").split("=", 1) for a in args)


# --- the scenario list against the offline core -------------------------------------------------


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if not s.in_kube_system],
                         ids=lambda s: s.name)
def test_scenario_expectations_hold_offline(scenario: Scenario, e2e_policy_set: Any) -> None:
    pod = build_pod(scenario, NAMESPACE)
    outcome, result = admit_offline(pod, NAMESPACE, creator_of(scenario, NAMESPACE) or ADMIN,
                                    e2e_policy_set)
    if scenario.outcome == DENIED:
        assert outcome == DENIED
        assert isinstance(result, str)
        assert result.startswith(f"{scenario.status} {denial_prefix(scenario.denied_by)}")
        assert scenario.message in result
    elif scenario.outcome == UNTOUCHED:
        assert outcome == MUTATED and result == pod, "a foreign pod must get no patch"
        assert check_pod(result, scenario) == []
    else:
        assert outcome == MUTATED and result != pod
        assert check_pod(result, scenario) == []


def test_kube_system_scenario_relies_on_the_namespace_selector(e2e_policy_set: Any) -> None:
    [scenario] = [s for s in SCENARIOS if s.in_kube_system]
    pod = build_pod(scenario, NAMESPACE)
    assert pod["metadata"]["namespace"] == "kube-system"
    # The core alone would deny this pod, so its creation in e2e proves the exclusion.
    outcome, _ = admit_offline(pod, "kube-system", scheduler_username("kube-system"),
                               e2e_policy_set)
    assert outcome == DENIED
    for config in webhook_configurations(None, url="https://127.0.0.1:1"):
        [expression] = config["webhooks"][0]["namespaceSelector"]["matchExpressions"]
        assert expression["operator"] == "NotIn" and "kube-system" in expression["values"]


def test_scenario_list_covers_the_issue() -> None:
    outcomes = {(s.outcome, s.denied_by, s.in_kube_system, s.fixture is None) for s in SCENARIOS}
    assert (DENIED, VALIDATING_WEBHOOK, False, False) in outcomes  # privileged pod
    assert (DENIED, MUTATING_WEBHOOK, False, False) in outcomes  # privileged override
    assert (UNTOUCHED, "", False, True) in outcomes  # foreign pod
    assert (UNTOUCHED, "", True, False) in outcomes  # kube-system pod
    assert any(s.outcome == MUTATED and s.annotations for s in SCENARIOS)
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


def test_check_pod_reports_mismatches() -> None:
    [scenario] = [s for s in SCENARIOS if s.name == "executor-template-and-profile"]
    problems = check_pod(build_pod(scenario, NAMESPACE), scenario)
    assert any("no airflow-pod-webhook.io/applied" in p for p in problems)
    assert any("nodeSelector.node-pool: expected 'spot'" in p for p in problems)


def test_checks_find_list_entries_by_key_not_position(e2e_policy_set: Any) -> None:
    """kube-apiserver's DefaultTolerationSeconds adds its tolerations before any webhook runs,
    so the profile's toleration is not first on a created pod; the check must still find it."""
    scenario = BY_NAME["executor-template-and-profile"]
    _, pod = admit_offline(build_pod(scenario, NAMESPACE), NAMESPACE,
                           scheduler_username(NAMESPACE), e2e_policy_set)
    assert isinstance(pod, dict) and check_pod(pod, scenario) == []
    kubernetes_own = [{"key": f"node.kubernetes.io/{key}", "operator": "Exists",
                       "effect": "NoExecute", "tolerationSeconds": 300}
                      for key in ("not-ready", "unreachable")]
    pod["spec"]["tolerations"] = kubernetes_own + pod["spec"]["tolerations"]
    assert check_pod(pod, scenario) == []
    pod["spec"]["tolerations"] = kubernetes_own
    assert any("spec.tolerations" in p for p in check_pod(pod, scenario))
    with pytest.raises(KeyError, match="2 entries with key='a'"):  # ambiguous is no match
        lookup({"l": [{"key": "a"}, {"key": "a"}]}, ("l", Item("key", "a")))


# --- envtest flags, as controller-runtime passes them ----------------------------------------


def test_etcd_flags(tmp_path: Path) -> None:
    args = flags(etcd_args(tmp_path, 2379, 2380, unsafe_no_fsync=True))
    assert args == {
        "data-dir": str(tmp_path),
        "listen-client-urls": "http://127.0.0.1:2379",
        "advertise-client-urls": "http://127.0.0.1:2379",
        "listen-peer-urls": "http://127.0.0.1:2380",
        "unsafe-no-fsync": "true",
    }
    assert "unsafe-no-fsync" not in flags(etcd_args(tmp_path, 1, 2, unsafe_no_fsync=False))


def test_apiserver_flags(tmp_path: Path) -> None:
    args = flags(apiserver_args(tmp_path, 2379, 6443))
    assert args["etcd-servers"] == "http://127.0.0.1:2379"
    assert (args["secure-port"], args["bind-address"]) == ("6443", "127.0.0.1")
    assert args["cert-dir"] == str(tmp_path)
    assert args["service-cluster-ip-range"] == "10.0.0.0/24"
    assert args["allow-privileged"] == "true"
    assert args["authorization-mode"] == "RBAC"
    assert args["service-account-issuer"] == "https://127.0.0.1:6443/"
    assert args["service-account-key-file"] == str(tmp_path / SA_CERT)
    assert args["service-account-signing-key-file"] == str(tmp_path / SA_KEY)
    assert args["client-ca-file"] == str(tmp_path / CLIENT_CA)
    enabled = set(args["enable-admission-plugins"].split(","))
    disabled = set(args["disable-admission-plugins"].split(","))
    assert {"MutatingAdmissionWebhook", "ValidatingAdmissionWebhook"} <= enabled
    assert disabled == {"ServiceAccount"} and not enabled & disabled
    # Gone since Kubernetes 1.24: passing it makes kube-apiserver exit.
    assert "insecure-port" not in args


def test_start_timeout_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT", raising=False)
    assert envtest.start_timeout() == 20
    for value, seconds in (("60s", 60), ("2m", 120), ("1500ms", 1.5), ("45", 45)):
        monkeypatch.setenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT", value)
        assert envtest.start_timeout() == seconds
    monkeypatch.setenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT", "soon")
    with pytest.raises(ControlPlaneError, match="use a duration"):
        envtest.start_timeout()


def test_control_plane_certs(tmp_path: Path) -> None:
    certs = write_control_plane_certs(tmp_path)
    for name in (SERVING_CERT, SERVING_KEY, SA_CERT, SA_KEY, CLIENT_CA):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    serving = x509.load_pem_x509_certificate((tmp_path / SERVING_CERT).read_bytes())
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    serving.verify_directly_issued_by(x509.load_pem_x509_certificate(certs.serving_ca))

    admin = x509.load_pem_x509_certificate(certs.admin_cert)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "envtest-admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] \
        == ["system:masters"]
    eku = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    admin.verify_directly_issued_by(
        x509.load_pem_x509_certificate((tmp_path / CLIENT_CA).read_bytes()))

    signing = load_pem_private_key((tmp_path / SA_KEY).read_bytes(), None)
    verifying = load_pem_public_key((tmp_path / SA_CERT).read_bytes())
    assert isinstance(signing, rsa.RSAPrivateKey)
    assert signing.public_key().public_numbers() == verifying.public_numbers()  # type: ignore


def test_kubeconfig_loads_with_the_official_client(tmp_path: Path) -> None:
    from kubernetes import client, config

    certs = write_control_plane_certs(tmp_path / "certs")
    path = write_kubeconfig(tmp_path / "kubeconfig", kubeconfig("https://127.0.0.1:6443", certs))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == "https://127.0.0.1:6443"
    assert Path(configuration.ssl_ca_cert).read_bytes() == certs.serving_ca
    assert Path(configuration.cert_file).read_bytes() == certs.admin_cert
    assert Path(configuration.key_file).read_bytes() == certs.admin_key
    assert yaml.safe_load(path.read_text())["current-context"] == "envtest"


# --- the start-up path, with stand-in binaries ------------------------------------------------

FAKE_ETCD = """
import http.server, json, sys, urllib.parse
if "--help" in sys.argv:
    print("      --unsafe-no-fsync   Disables fsync, unsafe, will cause data loss.")
    sys.exit(0)
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
need = {"data-dir", "listen-client-urls", "advertise-client-urls", "listen-peer-urls"}
if need - args.keys():
    sys.exit(f"fake etcd: missing {sorted(need - args.keys())}")
url = urllib.parse.urlparse(args["listen-client-urls"])
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/health"
        body = json.dumps({"health": "true"} if ok else {}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer((url.hostname, url.port), Health).serve_forever()
"""

# Refuses to start unless given every flag envtest passes, the files those flags name and a
# healthy etcd; then serves /readyz and /version over TLS to client-cert holders only.
FAKE_APISERVER = """
import http.server, json, os, ssl, sys, urllib.request
if os.environ.get("FAKE_APISERVER_MODE") == "exit":
    sys.exit("E0101 fake kube-apiserver: invalid flag combination")
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
need = {NEED}
if need - args.keys():
    sys.exit(f"fake kube-apiserver: missing {sorted(need - args.keys())}")
cert_dir = args["cert-dir"]
for f in ("apiserver.crt", "apiserver.key", args["service-account-key-file"],
          args["service-account-signing-key-file"], args["client-ca-file"]):
    if not os.path.exists(os.path.join(cert_dir, f)):
        sys.exit(f"fake kube-apiserver: {f} does not exist")
urllib.request.urlopen(args["etcd-servers"] + "/health", timeout=5).read()
if os.environ.get("FAKE_APISERVER_MODE") == "hang":
    import time; time.sleep(600)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(os.path.join(cert_dir, "apiserver.crt"),
                        os.path.join(cert_dir, "apiserver.key"))
context.verify_mode = ssl.CERT_REQUIRED
context.load_verify_locations(args["client-ca-file"])
class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        routes = {"/readyz": b"ok", "/version": json.dumps({
            "major": "1", "minor": "31", "gitVersion": "v1.31.0-fake", "gitCommit": "0",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.22", "compiler": "gc", "platform": "linux/amd64"}).encode()}
        body = routes.get(self.path.split("?")[0].rstrip("/"))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")
    def log_message(self, *a):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(args["secure-port"])), Api)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def install(path: Path, source: str) -> None:
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(source))
    path.chmod(0o755)


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    folder = tmp_path / "assets"
    folder.mkdir()
    install(folder / "etcd", FAKE_ETCD)
    need = sorted(flags(apiserver_args(Path("/x"), 1, 2)))
    install(folder / "kube-apiserver", FAKE_APISERVER.replace("{NEED}", repr(set(need))))
    return folder


def version_through_kubeconfig(path: Path) -> str:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        return client.VersionApi(api_client).get_code().git_version


def test_control_plane_starts_waits_and_stops(assets: Path, tmp_path: Path) -> None:
    plane = EnvtestControlPlane(assets, tmp_path / "work")
    plane.start()
    try:
        assert plane.etcd is not None and plane.apiserver is not None
        # The official client, the written kubeconfig, client-cert auth, CA verification:
        assert version_through_kubeconfig(plane.kubeconfig_path) == "v1.31.0-fake"
    finally:
        plane.stop()
    assert plane.apiserver.popen.poll() is not None and plane.etcd.popen.poll() is not None


def test_an_apiserver_that_exits_is_reported_with_its_output(
        assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_APISERVER_MODE", "exit")
    plane = EnvtestControlPlane(assets, tmp_path / "work")
    with pytest.raises(ControlPlaneError, match=r"(?s)kube-apiserver exited with code 1.*"
                                                r"invalid flag combination"):
        plane.start()
    assert plane.etcd is not None and plane.etcd.popen.poll() is not None, "etcd left running"


def test_an_apiserver_never_ready_times_out_clearly(
        assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_APISERVER_MODE", "hang")
    monkeypatch.setenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT", "2s")
    plane = EnvtestControlPlane(assets, tmp_path / "work")
    with pytest.raises(ControlPlaneError, match="readyz did not answer 200 within 2s"):
        plane.start()
    assert plane.apiserver is not None and plane.apiserver.popen.poll() is not None


def test_missing_binaries_are_named(tmp_path: Path) -> None:
    with pytest.raises(ControlPlaneError, match="lacks kube-apiserver, etcd"):
        EnvtestControlPlane(tmp_path, tmp_path / "work").start()


def real_etcd() -> str | None:
    """envtest's etcd when KUBEBUILDER_ASSETS has a runnable one, else one on PATH."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and os.access(Path(assets) / "etcd", os.X_OK):
        return str(Path(assets) / "etcd")
    return shutil.which("etcd")


@pytest.mark.skipif(real_etcd() is None, reason="no etcd in KUBEBUILDER_ASSETS or on PATH")
def test_a_real_etcd_starts_with_these_flags(assets: Path, tmp_path: Path) -> None:
    os.unlink(assets / "etcd")
    os.symlink(real_etcd() or "", assets / "etcd")
    plane = EnvtestControlPlane(assets, tmp_path / "work")
    plane.start()  # the stand-in apiserver checks etcd's /health at --etcd-servers
    try:
        assert version_through_kubeconfig(plane.kubeconfig_path) == "v1.31.0-fake"
    finally:
        plane.stop()


# --- backend choice and kind -------------------------------------------------------------------


def test_skip_reason_without_any_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setattr(harness, "kind_unavailable_reason", lambda: "kind not on PATH")
    backend, reason = harness.choose_backend()
    assert backend is None
    assert reason.startswith("no API server: set KUBEBUILDER_ASSETS to setup-envtest's folder,"
                             " or install docker+kind")
    assert "\n" not in reason


def test_envtest_chosen_when_assets_complete(assets: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    assert harness.choose_backend()[0] == "envtest"
    (assets / "kube-apiserver").unlink()
    backend, reason = harness.choose_backend()
    assert backend is None and "has no kube-apiserver" in reason


def test_kind_install_trusts_the_e2e_namespaces() -> None:
    settings = (POLICIES / "00-settings.yaml").read_text()
    objects = [{"kind": "ConfigMap", "metadata": {"name": "airflow-pod-webhook-policies-abc"},
                "data": {"00-settings.yaml": settings}}]
    trust_e2e_namespaces(objects)
    served = yaml.safe_load(objects[0]["data"]["00-settings.yaml"])
    trust = served["spec"]["identity"]["trustedCreators"]
    assert trust[:2] == [
        {"namespaces": ["airflow-e2e-*"],
         "usernames": ["system:serviceaccount:airflow-e2e-*:airflow-scheduler"],
         "podTypes": ["executor", "kpo"]},
        {"namespaces": ["airflow-e2e-*"],
         "usernames": ["system:serviceaccount:airflow-e2e-*:airflow-worker"],
         "podTypes": ["kpo"]}]
    assert trust[2:] == yaml.safe_load(settings)["spec"]["identity"]["trustedCreators"]


def test_deadline_loop_is_bounded() -> None:
    assert list(harness.deadline_loop(0, 0.01)) == [0]
    assert 2 <= len(list(harness.deadline_loop(0.05, 0.01))) <= 6
