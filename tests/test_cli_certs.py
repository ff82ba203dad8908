"""`certs`: a CA and a serving cert; running it again renews the cert under the same CA."""

from __future__ import annotations

from pathlib import Path


def test_certs_command_renews_with_the_same_ca(cli, tmp_path: Path) -> None:
    assert cli(["certs", "--out", str(tmp_path)])[0] == 0
    ca = (tmp_path / "ca.crt").read_bytes()
    cert = (tmp_path / "tls.crt").read_bytes()
    code, out, _ = cli(["certs", "--out", str(tmp_path)])
    assert code == 0 and "airflow-pod-webhook.airflow-pod-webhook.svc" in out
    assert (tmp_path / "ca.crt").read_bytes() == ca and (tmp_path / "tls.crt").read_bytes() != cert
