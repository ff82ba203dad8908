"""The test copies of the shared Airflow pods and chart pod templates stay identical to the
shared originals."""

import pytest

from tests.conftest import AIRFLOW_PODS, ROOT, SHARED_PODS

CHART_PODS = ROOT / "tests" / "fixtures" / "airflow-chart-1.18"
SHARED_CHART_PODS = ROOT.parent / "shared" / "fixtures" / "airflow-chart-1.18"


@pytest.mark.skipif(not SHARED_PODS.is_dir(), reason="../shared is not beside this checkout")
def test_copies_match_shared_fixtures() -> None:
    shared = {p.name: p.read_bytes() for p in SHARED_PODS.glob("*.json")}
    ours = {p.name: p.read_bytes() for p in AIRFLOW_PODS.glob("*.json")}
    assert shared
    assert ours == shared


@pytest.mark.skipif(not SHARED_CHART_PODS.is_dir(),
                    reason="../shared is not beside this checkout")
def test_chart_template_copies_match_shared_fixtures() -> None:
    shared = {p.name: p.read_bytes() for p in SHARED_CHART_PODS.iterdir()}
    ours = {p.name: p.read_bytes() for p in CHART_PODS.iterdir()}
    assert len(shared) == 6
    assert ours == shared
