"""The Helm chart (deploy/helm/airflow-pod-webhook) as an admin meets it before installing:
`helm lint` is clean, it refuses to render without an image, it renders the same objects as
the kustomize base (and its cert-manager and audit overlays), and its values reach the
objects: Airflow releases become trusted creators, certificates become caBundle, single-call
and url registration render what `manifests` renders."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.admission_reviews import pod_review
from tests.support.helm_chart import (
    CHART_DIR,
    IMAGE,
    IMAGE_VALUES,
    comparable,
    load_chart,
    notes,
    render,
)
from tests.support.paths import POLICIES
from tests.support.pods import airflow_pod
from tests.support.server_process import (
    SVC_NAME,
    PinnedHTTPSConnection,
    cli_command,
    post,
    running_server,
)
from webhook.cluster.certs import write_apiserver_client, write_certs
from webhook.cluster.registration import render_manifests, webhook_configurations
from webhook.policy.load import load_policy_dir
from webhook.policy.model import PolicySet

helm_python = pytest.importorskip("helm_python", reason="pip install helm-python-sdk ([test])")
TAGGED = f"{IMAGE}:0.1.0"


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def settings_of(objects: list[dict], folder: Path):
    """The Settings the webhook serves from the rendered policies ConfigMap, mounted at
    `folder`."""
    (configmap,) = by_kind(objects, "ConfigMap")
    for name, text in configmap["data"].items():
        (folder / name).write_text(text)
    result = load_policy_dir(folder)
    assert result.errors == ()
    return result.policy_set.settings


def test_helm_lint_is_clean() -> None:
    report = helm_python.lint(CHART_DIR, IMAGE_VALUES, strict=True)
    assert report["errors"] == []
    # Only Helm's "icon is recommended" (severity 1, info) remains.
    assert [m["severity"] for m in report["messages"]] == [1]


def test_the_chart_refuses_to_render_without_an_image() -> None:
    with pytest.raises(helm_python.HelmError, match=r"image\.repository is required"):
        render({})


def test_the_chart_and_the_kustomize_base_render_the_same_objects() -> None:
    chart = comparable(render(IMAGE_VALUES))
    base = comparable(render_manifests("deploy", image=TAGGED))
    assert sorted(chart) == sorted(base)
    assert chart == base


@pytest.mark.parametrize(("values", "overlay"), [
    ({"certificates": {"mode": "certManager"}}, "deploy/overlays/cert-manager"),
    ({"audit": {"enabled": True}}, "deploy/overlays/audit"),
], ids=["cert-manager", "audit"])
def test_chart_options_render_the_same_objects_as_the_overlays(values: dict,
                                                               overlay: str) -> None:
    chart = comparable(render({**IMAGE_VALUES, **values}))
    kustomized = comparable(render_manifests(overlay, image=TAGGED))
    assert chart == kustomized


def test_the_image_tag_defaults_to_the_chart_version_and_a_digest_pins_it() -> None:
    (deployment,) = by_kind(render(IMAGE_VALUES), "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == TAGGED
    digest = "sha256:" + "ab" * 32
    (deployment,) = by_kind(render({"image": {"repository": IMAGE, "digest": digest}}),
                            "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"{IMAGE}@{digest}")


# Every hook the registration renders: mutate, validate and the four for Airflow's accounts'
# writes and commands (webhook_configurations, issue 19).
HOOK_COUNT = 7


def test_generated_certificates_are_one_ca_for_secret_and_both_configurations() -> None:
    objects = render(IMAGE_VALUES)
    (secret,) = by_kind(objects, "Secret")
    ca = secret["data"]["ca.crt"]
    bundles = [hook["clientConfig"]["caBundle"] for obj in objects
               for hook in obj.get("webhooks", [])]
    assert bundles == [ca] * HOOK_COUNT
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "airflow-pod-webhook.airflow-pod-webhook.svc" in names.get_values_for_type(
        x509.DNSName)


def test_certs_output_becomes_the_secret_and_the_ca_bundle(tmp_path) -> None:
    write_certs(tmp_path, "airflow-pod-webhook", "airflow-pod-webhook")
    files = {name: (tmp_path / name).read_text() for name in ("tls.crt", "tls.key", "ca.crt")}
    objects = render({**IMAGE_VALUES, "certificates": {
        "mode": "files", "tlsCrt": files["tls.crt"], "tlsKey": files["tls.key"],
        "caCrt": files["ca.crt"]}})
    (secret,) = by_kind(objects, "Secret")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == files
    expected = base64.b64encode(files["ca.crt"].encode()).decode()
    assert [h["clientConfig"]["caBundle"] for o in objects for h in o.get("webhooks", [])] == [
        expected] * HOOK_COUNT


def test_single_call_and_url_render_what_manifests_renders(tmp_path) -> None:
    write_certs(tmp_path, "airflow-pod-webhook", "airflow-pod-webhook")
    ca = (tmp_path / "ca.crt").read_text()
    url = "https://webhook.example.com:8443"
    objects = render({**IMAGE_VALUES, "webhook": {"singleCall": True, "url": url},
                      "certificates": {"mode": "existingSecret", "existingSecret": "mine",
                                       "caCrt": ca}})
    rendered = subprocess.run(
        [*cli_command(), "manifests", "--single-call", "--url", url, "--cert-dir",
         str(tmp_path)], capture_output=True, text=True, check=True, timeout=60).stdout
    manifests = [o for o in yaml.safe_load_all(rendered) if o]
    configurations = [o for o in objects if "webhooks" in o]
    for obj in configurations:
        for label in ("helm.sh/chart", "app.kubernetes.io/instance",
                      "app.kubernetes.io/managed-by", "app.kubernetes.io/version"):
            obj["metadata"]["labels"].pop(label)
    assert configurations == manifests
    assert by_kind(objects, "Secret") == []
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"] == "mine"


def test_the_release_namespace_is_excluded_and_named_in_the_service_reference() -> None:
    objects = render(IMAGE_VALUES, namespace="platform")
    expected = webhook_configurations(None, namespace="platform")
    hooks = [hook for obj in objects for hook in obj.get("webhooks", [])]
    for hook, want in zip(hooks, [w for o in expected for w in o["webhooks"]], strict=True):
        hook["clientConfig"].pop("caBundle")
        assert hook == want
    cluster_scoped = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
                      "FlowSchema", "PriorityLevelConfiguration"}
    assert {o["metadata"]["namespace"] for o in objects
            if o["kind"] not in cluster_scoped} == {"platform"}


def test_bundled_settings_are_the_repository_settings(tmp_path: Path,
                                                       bundled: PolicySet) -> None:
    assert settings_of(render(IMAGE_VALUES), tmp_path) == bundled.settings


def test_named_airflow_releases_become_the_trusted_creators(tmp_path: Path,
                                                             bundled: PolicySet) -> None:
    values = {**IMAGE_VALUES, "airflow": {"releases": [
        {"release": "prod", "namespace": "prod"},
        {"release": "airflow", "namespace": "airflow",
         "taskNamespaces": ["airflow", "data-airflow", "airflow-legacy"]}]}}
    settings = settings_of(render(values), tmp_path)
    assert settings.creator_trusted("prod", "system:serviceaccount:prod:prod-airflow-scheduler")
    assert not settings.creator_trusted("prod", "system:serviceaccount:prod:airflow-scheduler")
    assert not settings.creator_trusted("other", "system:serviceaccount:prod:"
                                                 "prod-airflow-scheduler")
    # Release `airflow` named the way the bundled Settings name it: the same trust, once more.
    assert settings.trusted_creators[2:] == bundled.settings.trusted_creators
    assert settings.annotation_prefix == bundled.settings.annotation_prefix
    assert settings.node_pool_label == bundled.settings.node_pool_label


def configurations(objects: list[dict]) -> list[dict]:
    """The rendered webhook configurations, without what only the chart's values decide
    (metadata, caBundle; the tests above pin those)."""
    out = []
    for obj in objects:
        if "webhooks" in obj:
            obj = {k: v for k, v in obj.items() if k != "metadata"}
            for hook in obj["webhooks"]:
                hook["clientConfig"].pop("caBundle", None)
            out.append(obj)
    return out


def registration(usernames: tuple[str, ...], single_call: bool) -> list[dict]:
    return [{k: v for k, v in obj.items() if k != "metadata"} for obj in webhook_configurations(
        None, single_call=single_call, airflow_usernames=usernames)]


SETTINGS_ONLY = """\
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Settings
metadata:
  name: settings
spec:
  identity:
    untrusted: deny
"""
TEAM_SETTINGS = """\
# The team's Settings, after an empty first document, in a file that sorts after the others.
---
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Settings
metadata:
  name: settings
spec:
  identity:
    airflowReleases:
      - {release: n, namespace: y}
    trustedCreators:
      - namespaces: [etl]
        usernames: [system:serviceaccount:etl:launcher, "ci-*"]
    airflowAccounts: ["system:serviceaccount:etl:launcher", "ops?bot"]
"""
# What an admin names: the bundled release, another release (whose accounts are
# <release>-airflow-*), a release with "airflow" in its name (<release>-*), one whose Airflow
# chart sets fullnameOverride, two releases, extra accounts (exact, globs, characters the CEL
# string must escape, non-ASCII), Settings that name no account, and their own Settings file.
CHART_ACCOUNTS = {
    "bundled": {},
    "release-prod": {"airflow": {"releases": [{"release": "prod", "namespace": "prod"}]}},
    "release-with-airflow": {"airflow": {"releases": [
        {"release": "data-airflow", "namespace": "data"}]}},
    "fullname-override": {"airflow": {"releases": [
        {"release": "prod", "namespace": "prod", "fullnameOverride": "af-"}]}},
    "two-releases": {"airflow": {"releases": [
        {"release": "prod", "namespace": "prod", "taskNamespaces": ["prod", "prod-tasks"]},
        {"release": "airflow", "namespace": "airflow"}]}},
    "extra-accounts": {"airflow": {
        "releases": [{"release": "prod", "namespace": "prod"}],
        "accounts": ["system:serviceaccount:ci:deployer", "system:serviceaccount:tasks:*",
                     'odd"name\\x', "jürgen@example.com", "bot-?.v2",
                     "system:serviceaccount:prod:prod-airflow-worker"]}},
    "accounts-only": {"airflow": {"accounts": ["system:serviceaccount:ops:runner"]}},
    "no-account": {"policies": {"bundled": False, "files": {"00-settings.yaml": SETTINGS_ONLY}}},
    "policy-files": {"policies": {"files": {"00-settings.yaml": "# in 50-team.yaml\n",
                                            "50-team.yaml": TEAM_SETTINGS}}},
}


@pytest.mark.parametrize("single_call", [False, True], ids=["pair", "single-call"])
@pytest.mark.parametrize("values", CHART_ACCOUNTS.values(), ids=CHART_ACCOUNTS.keys())
def test_the_hooks_name_exactly_the_accounts_the_chart_settings_name(
        values: dict, single_call: bool, tmp_path: Path) -> None:
    """The oracle is the Python side: the Settings the webhook loads from the chart's own
    ConfigMap, and the registration `manifests --policies` renders for them."""
    objects = render(merged_values(values, {"webhook": {"singleCall": single_call}}))
    usernames = settings_of(objects, tmp_path).airflow_usernames
    assert configurations(objects) == registration(usernames, single_call)


def merged_values(*parts: dict) -> dict:
    out: dict = dict(IMAGE_VALUES)
    for part in parts:
        out = merged(out, part)
    return out


def test_release_prod_registers_prod_accounts_not_the_bundled_ones(tmp_path: Path) -> None:
    objects = render(merged_values(CHART_ACCOUNTS["release-prod"]))
    assert settings_of(objects, tmp_path).airflow_usernames == tuple(
        f"system:serviceaccount:prod:prod-airflow-{account}"
        for account in ("scheduler", "worker", "triggerer", "dag-processor", "api-server"))
    text = yaml.safe_dump_all(configurations(objects))
    assert "system:serviceaccount:prod:prod-airflow-worker" in text
    assert "system:serviceaccount:airflow:" not in text
    assert [len(o["webhooks"]) for o in configurations(objects)] == [1, HOOK_COUNT - 1]


def test_settings_naming_no_account_register_no_writer_hook(tmp_path: Path) -> None:
    objects = render(merged_values(CHART_ACCOUNTS["no-account"]))
    assert settings_of(objects, tmp_path).airflow_usernames == ()
    assert [[h["name"] for h in o["webhooks"]] for o in configurations(objects)] == [
        ["mutate.airflow-pod-webhook.io"], ["validate.airflow-pod-webhook.io"]]
    single = render(merged_values(CHART_ACCOUNTS["no-account"],
                                  {"webhook": {"singleCall": True}}))
    assert [o["kind"] for o in configurations(single)] == ["MutatingWebhookConfiguration"]
    warning = notes(merged_values(CHART_ACCOUNTS["no-account"]))
    assert "WARNING: the Settings name none of Airflow's accounts" in warning
    assert "WARNING" not in notes(IMAGE_VALUES)


def test_with_an_existing_configmap_the_accounts_come_from_the_values(tmp_path: Path) -> None:
    """The chart cannot read a ConfigMap it does not render: airflow.releases and
    airflow.accounts name what its Settings name (here written out as the admin would)."""
    values = {"policies": {"existingConfigMap": "from-git"}, "airflow": {
        "releases": [{"release": "prod", "namespace": "prod"}],
        "accounts": ["system:serviceaccount:ci:deployer"]}}
    (tmp_path / "00-settings.yaml").write_text(SETTINGS_ONLY + """\
    airflowReleases: [{release: prod, namespace: prod}]
    airflowAccounts: [system:serviceaccount:ci:deployer]
""")
    loaded = load_policy_dir(tmp_path)
    assert loaded.errors == ()
    usernames = loaded.policy_set.settings.airflow_usernames
    assert len(usernames) == 6
    for single_call in (False, True):
        objects = render(merged_values(values, {"webhook": {"singleCall": single_call}}))
        assert by_kind(objects, "ConfigMap") == []
        assert configurations(objects) == registration(usernames, single_call)


def test_an_existing_configmap_without_accounts_refuses_to_render() -> None:
    with pytest.raises(helm_python.HelmError, match=(
            r"policies\.existingConfigMap is set, so the chart cannot read the Settings .*"
            r"airflow\.releases and/or airflow\.accounts")):
        render({**IMAGE_VALUES, "policies": {"existingConfigMap": "from-git"}})


def test_an_existing_configmap_replaces_the_bundled_policies() -> None:
    objects = render({**IMAGE_VALUES, "policies": {"existingConfigMap": "from-git"},
                      "airflow": {"releases": [{"release": "airflow", "namespace": "airflow"}]}})
    assert by_kind(objects, "ConfigMap") == []
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["volumes"][2] == {
        "name": "policies", "configMap": {"name": "from-git"}}


def test_a_policy_change_rolls_the_pods() -> None:
    def checksum(values: dict) -> str:
        (deployment,) = by_kind(render(values), "Deployment")
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/policies"]

    extra = {"policies": {"files": {"70-team.yaml": "# nothing yet\n"}}}
    assert checksum(IMAGE_VALUES) == checksum(IMAGE_VALUES)
    assert checksum(IMAGE_VALUES) != checksum({**IMAGE_VALUES, **extra})


@pytest.mark.parametrize(("values", "problem"), [
    ({"image": {"repository": IMAGE, "tag": "bad tag"}}, "tag"),
    ({**IMAGE_VALUES, "certificates": {"mode": "selfsigned"}}, "mode"),
    ({**IMAGE_VALUES, "webhook": {"url": "http://insecure"}}, "url"),
    ({**IMAGE_VALUES, "replica": 3}, "replica"),
    ({**IMAGE_VALUES, "airflow": {"accounts": ["has space"]}}, "accounts"),
])
def test_values_outside_the_schema_are_refused_by_name(values: dict, problem: str) -> None:
    with pytest.raises(helm_python.HelmError, match=problem):
        render(values)


def test_notes_say_how_to_check_it_works() -> None:
    text = notes(IMAGE_VALUES)
    assert "kubectl -n airflow-pod-webhook rollout status deployment/airflow-pod-webhook" in text
    assert "--dry-run=server" in text
    assert 'admission webhook "validate.airflow-pod-webhook.io" denied the request' in text


def test_chart_version_is_the_package_and_image_version() -> None:
    import webhook

    chart = load_chart()
    assert chart.version == chart.metadata["appVersion"] == webhook.__version__


def merged(left: dict, right: dict) -> dict:
    """Helm's merge of two --set results (maps by key, lists item by item)."""
    out = dict(left)
    for key, value in right.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [merged(a, b) if isinstance(a, dict) and isinstance(b, dict) else b
                        for a, b in zip(out[key], value, strict=True)]
        else:
            out[key] = value
    return out


def test_the_readme_helm_install_command_renders_a_working_install(tmp_path: Path) -> None:
    """The README's `helm install` line, its --set flags parsed as Helm parses them."""
    readme = (CHART_DIR.parents[2] / "README.md").read_text()
    block = readme[readme.index("    helm install airflow-pod-webhook deploy/helm/"):]
    command = " ".join(line.strip().rstrip("\\") for line in block.split("\n\n")[0].splitlines())
    words = command.split()
    assert words[:4] == ["helm", "install", "airflow-pod-webhook",
                         "deploy/helm/airflow-pod-webhook"]
    assert words[words.index("--namespace") + 1] == "airflow-pod-webhook"
    values: dict = {}
    for i, word in enumerate(words):
        if word == "--set":
            values = merged(values, helm_python.parse_set_string(words[i + 1].strip("'")))
    objects = render(values, release="airflow-pod-webhook")
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.acme.internal/platform/airflow-pod-webhook:0.1.0")
    settings = settings_of(objects, tmp_path)
    assert settings.creator_trusted("airflow", "system:serviceaccount:airflow:airflow-scheduler")


def client_ca_of(objects: list[dict], folder: Path) -> tuple[list[str], Path]:
    """The webhook's args and, as a file in `folder`, the client CA its Deployment mounts
    (the ConfigMap's ca.crt at the client-ca volume's mount path)."""
    (deployment,) = by_kind(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "client-ca")
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "client-ca")
    (configmap,) = [c for c in by_kind(objects, "ConfigMap")
                    if c["metadata"]["name"] == volume["configMap"]["name"]]
    (arg,) = [a for a in container["args"] if a.startswith("--client-ca=")]
    path = arg.removeprefix("--client-ca=")
    assert path.startswith(mount["mountPath"] + "/")
    local = folder / path.removeprefix(mount["mountPath"] + "/")
    local.write_text(configmap["data"][local.name])
    return container["args"], local


def test_a_client_ca_makes_the_webhook_take_reviews_only_from_the_api_server(
        tmp_path: Path) -> None:
    """--set-file clientCA.crt=certs/client-ca.crt: the server the rendered Deployment starts
    answers the API server's client certificate and refuses a caller without one."""
    client = write_apiserver_client(tmp_path / "certs", ["airflow-pod-webhook.x.svc"], "/k")
    objects = render({**IMAGE_VALUES, "clientCA": {"crt": client.client_ca.read_text()}})
    args, ca_file = client_ca_of(objects, tmp_path)
    assert args[-1] == "--client-ca=/etc/airflow-pod-webhook/client-ca/ca.crt"
    (deployment,) = by_kind(objects, "Deployment")
    assert "checksum/client-ca" in deployment["spec"]["template"]["metadata"]["annotations"]
    with running_server(tmp_path / "server", POLICIES, workers=1,
                        extra=("--client-ca", str(ca_file))) as server:
        pod = pod_review(airflow_pod("airflow3-executor"), uid="no-cert")
        assert post(server.connect(), "/validate", pod)[0] == 401
        context = server.tls_context()
        context.load_cert_chain(client.client_cert, client.client_key)
        connection = PinnedHTTPSConnection("127.0.0.1", server.port, SVC_NAME, context, 10)
        status, body, _ = post(connection, "/validate",
                               pod_review(airflow_pod("airflow3-executor"), uid="cert"))
        assert (status, body["response"]["uid"]) == (200, "cert")


def test_a_client_ca_from_an_existing_secret_is_mounted_from_it() -> None:
    objects = render({**IMAGE_VALUES, "clientCA": {"existingSecret": "apiserver-client-ca",
                                                   "existingSecretKey": "tls-ca.crt"}})
    (deployment,) = by_kind(objects, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert spec["containers"][0]["args"][-1] == (
        "--client-ca=/etc/airflow-pod-webhook/client-ca/tls-ca.crt")
    assert {"name": "client-ca", "secret": {"secretName": "apiserver-client-ca",
                                            "defaultMode": 0o440}} in spec["volumes"]
    assert [c["metadata"]["name"] for c in by_kind(objects, "ConfigMap")] == [
        "airflow-pod-webhook-policies"]  # no ConfigMap of ours for it


def test_without_a_client_ca_there_is_no_mutual_tls() -> None:
    (deployment,) = by_kind(render(IMAGE_VALUES), "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert not [a for a in spec["containers"][0]["args"] if "client-ca" in a]
    assert "client-ca" not in [v["name"] for v in spec["volumes"]]


@pytest.mark.parametrize(("client_ca", "problem"), [
    ({"crt": "not a certificate"}, "clientCA.crt is not a PEM certificate"),
    ({"crt": "-----BEGIN CERTIFICATE-----\n", "existingSecret": "s"},
     "clientCA.crt and clientCA.existingSecret both set"),
], ids=["not-pem", "both"])
def test_a_client_ca_given_wrong_is_refused_by_name(client_ca: dict, problem: str) -> None:
    with pytest.raises(helm_python.HelmError, match=problem):
        render({**IMAGE_VALUES, "clientCA": client_ca})
