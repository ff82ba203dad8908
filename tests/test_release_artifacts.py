"""`make dist` as a release: a wheel and an sdist of the project's version, and a chart of the
same version. The wheel installs into the supported Airflow environments (2.10.5 and 3.3.2,
real venvs from tools/airflow_venv.py) without changing any of their packages: pip resolves it
there with no index at all, and DAG code runs from it next to Airflow's own packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
import yaml

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from airflow_venv import PROVIDERS, airflow_venv

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make dist` builds (python -m build), in a folder of its own."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    return out


def wheel_of(dist: Path) -> Path:
    (wheel,) = dist.glob("*.whl")
    return wheel


def airflow_python(version: str) -> Path:
    try:
        return airflow_venv(version)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"no Airflow {version} venv could be built: {exc}")


def test_dist_is_a_wheel_and_an_sdist_of_the_project_version(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == [
        f"airflow_pod_webhook-{VERSION}-py3-none-any.whl",
        f"airflow_pod_webhook-{VERSION}.tar.gz"]
    names = zipfile.ZipFile(wheel_of(dist)).namelist()
    assert "webhook/dag_annotations.py" in names
    assert "webhook/py.typed" in names
    assert any(n.startswith("webhook/kube/schema/") and n.endswith(".json") for n in names)
    assert not any(n.startswith(("tests/", "deploy/")) for n in names)


@pytest.mark.parametrize("version", sorted(PROVIDERS))
def test_the_wheel_installs_into_airflow_without_changing_its_packages(
        dist: Path, version: str, tmp_path: Path) -> None:
    python = airflow_python(version)
    # The resolution pip would carry out, with no index: everything the wheel needs is there.
    report = tmp_path / "report.json"
    subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--no-index",
                    "--quiet", "--report", str(report), str(wheel_of(dist))],
                   check=True, capture_output=True, timeout=300)
    installs = json.loads(report.read_text())["install"]
    assert [(i["metadata"]["name"], i["metadata"]["version"]) for i in installs] == [
        ("airflow-pod-webhook", VERSION)]
    # And DAG code runs from the wheel's files beside Airflow's packages (a --target folder:
    # the shared venv itself is never written to).
    site = tmp_path / "site"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                    "--target", str(site), str(wheel_of(dist))],
                   check=True, capture_output=True, timeout=300)
    code = ("import airflow, webhook, webhook.dag_annotations as d; "
            f"print(airflow.__version__, webhook.__file__.startswith({str(site)!r}), "
            "d.override_annotations(memory='8Gi', profiles=['small']))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                         timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(site)}).stdout
    assert out.split(" ", 2)[:2] == [version, "True"]
    assert "'airflow-pod-webhook.io/memory': '8Gi'" in out


def test_package_chart_and_image_share_one_version() -> None:
    import webhook

    chart = yaml.safe_load((ROOT / "deploy" / "helm" / "airflow-pod-webhook" / "Chart.yaml")
                           .read_text())
    assert webhook.__version__ == VERSION
    assert chart["version"] == chart["appVersion"] == VERSION
    assert f"airflow-pod-webhook:{VERSION}" in (ROOT / "Dockerfile").read_text()
