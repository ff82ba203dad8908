"""The test copies of the shared Airflow pods and chart pod templates stay identical to the
shared originals."""

import pytest

from tests.support.paths import AIRFLOW_PODS, CHART_TEMPLATES, SHARED_CHART_TEMPLATES, SHARED_PODS


@pytest.mark.skipif(not SHARED_PODS.is_dir(), reason="../shared is not beside this checkout")
def test_copies_match_shared_fixtures() -> None:
    shared = {p.name: p.read_bytes() for p in SHARED_PODS.glob("*.json")}
    ours = {p.name: p.read_bytes() for p in AIRFLOW_PODS.glob("*.json")}
    assert shared
    assert ours == shared


@pytest.mark.skipif(not SHARED_CHART_TEMPLATES.is_dir(),
                    reason="../shared is not beside this checkout")
def test_chart_template_copies_match_shared_fixtures() -> None:
    shared = {p.name: p.read_bytes() for p in SHARED_CHART_TEMPLATES.iterdir()}
    ours = {p.name: p.read_bytes() for p in CHART_TEMPLATES.iterdir()}
    assert len(shared) == 6
    assert ours == shared
