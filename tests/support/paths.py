"""Where the tests' inputs live: the repository, the bundled policies and the fixture pods."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
# Copies of ../shared/fixtures/airflow-pods (pods real Airflow 2.10 and 3.3 code built).
AIRFLOW_PODS = ROOT / "tests" / "fixtures" / "airflow-pods"
SHARED_PODS = ROOT.parent / "shared" / "fixtures" / "airflow-pods"
# The official chart's rendered pod_template_files (copies of ../shared/fixtures/...), and the
# executor pods real Airflow built from them (tools/gen_airflow_built_pods.py).
CHART_TEMPLATES = ROOT / "tests" / "fixtures" / "airflow-chart-1.18"
SHARED_CHART_TEMPLATES = ROOT.parent / "shared" / "fixtures" / "airflow-chart-1.18"
