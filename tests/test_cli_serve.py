"""`serve` refuses a wrong flag before it starts anything: exit 2, one `error:` line (the
server itself is tests/test_server.py's and the e2e tests')."""

from __future__ import annotations

from pathlib import Path

from tests.support.paths import POLICIES


def test_a_missing_policy_folder_is_a_wrong_flag(cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert cli(["serve", "--policies", str(missing), "--cert-dir", str(tmp_path / "certs")]) == (
        2, "", f"error: --policies {missing} is not a folder of policy files\n")
    assert not (tmp_path / "certs").exists()  # refused before any certificate is written


def test_a_missing_client_ca_says_how_to_write_one(cli, tmp_path: Path) -> None:
    certs, client_ca = tmp_path / "certs", tmp_path / "client-ca.crt"
    code, out, err = cli(["serve", "--policies", str(POLICIES), "--cert-dir", str(certs),
                          "--client-ca", str(client_ca)])
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"generated a development CA and serving cert in {certs}/ (CA: {certs}/ca.crt); use "
        "real certs in production",
        f"error: --client-ca {client_ca} is not a file (write one with `airflow-pod-webhook "
        "certs --apiserver-client`)"]


def test_the_hold_on_refusals_reaches_the_server(cli, tmp_path: Path, monkeypatch) -> None:
    # What `serve` hands the server, stopped before it listens.
    started: list = []
    monkeypatch.setattr("webhook.serving.server.serve", started.append)
    common = ["serve", "--policies", str(POLICIES), "--cert-dir", str(tmp_path / "certs")]
    assert cli([*common, "--hold-refusals", "0"])[0] == 0
    assert cli(common)[0] == 0
    assert [options.hold_refusals for options in started] == [0.0, 0.7]
