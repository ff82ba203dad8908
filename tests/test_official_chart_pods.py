"""An admin who runs Airflow from the official Apache Airflow Helm chart (1.18) installs the
webhook with its bundled policies: every executor pod the chart's pod_template_file gives
(git-sync init container included), built by real Airflow code, with and without a task's
pod_override, is admitted with no warning; and the Settings know the chart's ServiceAccounts
for a release the admin names once (release `prod` in namespace `prod` here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.paths import ROOT
from webhook.airflow_pods import PodType, identify
from webhook.mutation.mutate import mutate_pod
from webhook.policy.compile import airflow_chart_fullname
from webhook.policy.load import load_policy_dir
from webhook.policy.model import PolicySet
from webhook.validation.validate import validate_pod

sys.path.insert(0, str(ROOT / "tools"))
from airflow_venv import airflow_venv

CHART_PODS = ROOT / "tests" / "fixtures" / "airflow-chart-1.18"
TEMPLATES = sorted(CHART_PODS.glob("*.pod_template_file.yaml"))
AIRFLOW = {"af2": "2.10.5", "af3": "3.3.2"}
# A task asking for a profile and a label through executor_config={"pod_override": ...}.
OVERRIDE = {"metadata": {"annotations": {"airflow-pod-webhook.io/profiles": "small"},
                         "labels": {"team": "data"}}}
SMALL_PROFILE = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}


def release_of(template: Path) -> str:
    """The chart release the file was rendered for (its pods' `release` label)."""
    return yaml.safe_load(template.read_text())["metadata"]["labels"]["release"]


def scheduler(template: Path) -> tuple[str, str]:
    """(namespace, scheduler username) of the release: the README says release `airflow` is
    in namespace `airflow`, release `prod` in namespace `prod`."""
    release = release_of(template)
    namespace = release
    return namespace, (f"system:serviceaccount:{namespace}:"
                       f"{airflow_chart_fullname(release)}-scheduler")


def airflow_python(version: str) -> Path:
    try:
        return airflow_venv(version)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"no Airflow {version} venv could be built: {exc}")


@pytest.fixture(scope="module")
def executor_pods() -> dict[tuple[str, bool], dict]:
    """(template file name, with pod_override) -> the executor pod Airflow builds."""
    pods: dict[tuple[str, bool], dict] = {}
    for tag, version in AIRFLOW.items():
        mine = [t for t in TEMPLATES if t.name.startswith(f"k8s-{tag}")]
        jobs = [{"template": str(t), "namespace": scheduler(t)[0],
                 "override": OVERRIDE if with_override else None}
                for t in mine for with_override in (False, True)]
        out = subprocess.run([str(airflow_python(version)), str(ROOT / "tests" / "support" /
                                                                "build_executor_pod.py")],
                             input=json.dumps(jobs), capture_output=True, text=True,
                             check=True, timeout=300)
        for job, pod in zip(jobs, json.loads(out.stdout), strict=True):
            pods[(Path(job["template"]).name, job["override"] is not None)] = pod
    return pods


@pytest.fixture(scope="module")
def prod_policies(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    """The bundled policies after the admin named release `prod` (namespace `prod`) once."""
    folder = tmp_path_factory.mktemp("policies")
    for path in (ROOT / "policies").glob("*.yaml"):
        shutil.copy(path, folder)
    settings = (folder / "00-settings.yaml").read_text()
    bundled = ("      - release: airflow\n        namespace: airflow\n"
               "        taskNamespaces: [airflow, data-airflow, airflow-legacy]\n")
    assert bundled in settings
    (folder / "00-settings.yaml").write_text(
        settings.replace(bundled, "      - release: prod\n        namespace: prod\n"))
    result = load_policy_dir(folder)
    assert result.policy_set is not None, result.errors
    return result.policy_set


def test_the_fixtures_cover_both_airflow_versions_git_sync_and_another_release() -> None:
    names = {t.name for t in TEMPLATES}
    assert names == {"k8s-af2.pod_template_file.yaml", "k8s-af2-gitsync.pod_template_file.yaml",
                     "k8s-af3.pod_template_file.yaml", "k8s-af3-gitsync.pod_template_file.yaml",
                     "k8s-af3-release-prod.pod_template_file.yaml"}
    assert {release_of(t) for t in TEMPLATES} == {"airflow", "prod"}


@pytest.mark.parametrize("with_override", [False, True], ids=["plain", "pod-override"])
@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name.split(".")[0])
def test_chart_executor_pod_is_admitted_without_a_warning(
        template: Path, with_override: bool, executor_pods, bundled: PolicySet,
        prod_policies: PolicySet) -> None:
    pod = executor_pods[(template.name, with_override)]
    assert identify(pod).pod_type is PodType.EXECUTOR
    namespace, username = scheduler(template)
    policies = prod_policies if release_of(template) == "prod" else bundled
    mutated = mutate_pod(pod, policies, namespace, username)
    assert mutated.allowed, [r.message for r in mutated.refusals]
    assert mutated.warnings == ()
    result = validate_pod(mutated.pod, policies, namespace, username)
    assert result.allowed, result.message
    assert result.warnings == ()
    assert result.rules_violated == ()
    base = next(c for c in mutated.pod["spec"]["containers"] if c["name"] == "base")
    # The scheduler is trusted: the task's profile is applied, not just the safe defaults.
    expected = SMALL_PROFILE if with_override else {
        "requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    assert base["resources"] == expected
    inits = mutated.pod["spec"].get("initContainers", [])
    assert [c["name"] for c in inits] == (["git-sync-init"] if "gitsync" in template.name
                                          else [])
    for init in inits:
        assert init["image"] == "registry.k8s.io/git-sync/git-sync:v4.3.0"
        assert init["securityContext"]["allowPrivilegeEscalation"] is False
        assert init["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert init["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                                     "limits": {"memory": "256Mi"}}


def test_release_prod_is_untrusted_until_the_admin_names_it(executor_pods,
                                                            bundled: PolicySet) -> None:
    template = CHART_PODS / "k8s-af3-release-prod.pod_template_file.yaml"
    pod = executor_pods[(template.name, True)]
    _, username = scheduler(template)
    assert username == "system:serviceaccount:prod:prod-airflow-scheduler"
    result = validate_pod(mutate_pod(pod, bundled, "prod", username).pod, bundled, "prod",
                          username)
    # The bundled Settings name release `airflow` only; `prod` gets the catch-all entry.
    assert result.rules_violated == ("identity: trustedCreators",)


@pytest.mark.parametrize(("release", "fullname"), [
    ("airflow", "airflow"), ("prod", "prod-airflow"), ("my-airflow", "my-airflow"),
    ("airflow-prod", "airflow-prod")])
def test_chart_fullname_follows_the_airflow_chart(release: str, fullname: str) -> None:
    assert airflow_chart_fullname(release) == fullname
    assert airflow_chart_fullname(release, "custom") == "custom"
