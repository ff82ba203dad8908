"""`airflow-pod-webhook audit` against a real kube-apiserver with NO webhook registered: pods an
admin already runs are listed through a kubeconfig, judged, and reported as PolicyReports that
the API server accepts under the real CRD.

Self-contained: it starts its own control plane (envtest binaries from KUBEBUILDER_ASSETS), so it
depends on no other e2e fixture.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.envtest import EnvtestControlPlane, missing_binaries
from tests.support.paths import POLICIES, ROOT
from tests.support.pods import airflow_pod
from tests.support.server_process import cli_command
from webhook.audit.judge import audit_pod
from webhook.audit.strip import submitted_pod
from webhook.cluster.registration import deploy_with_image
from webhook.policy.model import PolicySet

pytestmark = pytest.mark.e2e
CRD = ROOT / "tests" / "fixtures" / "crds" / "policyreports.wgpolicyk8s.io.yaml"
EXPLAIN = "airflow-pod-webhook.io/applied"
PRIVILEGED = ("spec.containers[base].securityContext.privileged must be unset or false, "
              "got true (baseline: privileged)")


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvtestControlPlane]:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if not assets or missing_binaries(Path(assets)):
        pytest.skip("needs KUBEBUILDER_ASSETS with kube-apiserver and etcd (../shared/k8s/bin)")
    control_plane = EnvtestControlPlane(Path(assets), tmp_path_factory.mktemp("audit-envtest"))
    try:
        control_plane.start()
        yield control_plane
    finally:
        control_plane.stop()


def api(plane: EnvtestControlPlane, token: str | None = None) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(plane.kubeconfig_path),
                            client_configuration=configuration)
    return client.ApiClient(configuration)


def kubectl(plane: EnvtestControlPlane, *args: str, stdin: str | None = None
            ) -> subprocess.CompletedProcess:
    binary = Path(os.sys.executable).parent / "kubectl"
    return subprocess.run([str(binary), f"--kubeconfig={plane.kubeconfig_path}", *args],
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)


def audit(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*cli_command(), "audit", "--policies", str(POLICIES),
                           "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def submitted_pods(namespace: str) -> dict[str, dict]:
    compliant = airflow_pod("airflow3-executor-pod-override")
    privileged = airflow_pod("airflow3-executor")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    kpo = airflow_pod("airflow3-kpo-xcom")
    foreign = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                        "ports": [{"containerPort": 80}]}]}}
    pods = {"compliant": compliant, "privileged": privileged, "kpo": kpo, "foreign": foreign}
    for name, pod in pods.items():
        pod["metadata"]["name"] = name
        pod["metadata"]["namespace"] = namespace
    return pods


@pytest.fixture(scope="module")
def cluster(plane: EnvtestControlPlane) -> dict[str, Any]:
    """A namespace holding four pods created without any webhook, and the PolicyReport CRD."""
    from kubernetes import client

    namespace = f"airflow-audit-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api(plane))
    core.create_namespace({"metadata": {"name": namespace}}, _preload_content=False)
    pods = submitted_pods(namespace)
    stored = {}
    for name, pod in pods.items():
        response = core.create_namespaced_pod(namespace, copy.deepcopy(pod),
                                              _preload_content=False)
        stored[name] = json.loads(response.data)
    created = kubectl(plane, "apply", "--validate=false", "-f", str(CRD))
    assert created.returncode == 0, created.stderr
    waited = kubectl(plane, "wait", "--for=condition=Established", "--timeout=60s",
                     "crd/policyreports.wgpolicyk8s.io")
    assert waited.returncode == 0, waited.stderr
    return {"namespace": namespace, "submitted": pods, "stored": stored}


def test_a_stored_pod_strips_back_to_the_submitted_one(cluster: dict[str, Any]) -> None:
    for name, pod in cluster["submitted"].items():
        stored = cluster["stored"][name]
        assert stored["metadata"]["uid"] and stored["status"]  # the API server did add them
        assert submitted_pod(stored, EXPLAIN) == submitted_pod(pod, EXPLAIN), name


def test_json_output_judges_every_pod(plane: EnvtestControlPlane, cluster: dict[str, Any],
                                     bundled: PolicySet) -> None:
    namespace = cluster["namespace"]
    # Two pods per list request: the four pods come in two pages.
    result = audit(plane.kubeconfig_path, "-n", namespace, "-o", "json", "--chunk-size", "2")
    assert result.returncode == 1, result.stderr  # the privileged pod would be denied
    report = json.loads(result.stdout)
    by_name = {p["name"]: p for p in report["pods"]}
    assert sorted(by_name) == ["compliant", "foreign", "kpo", "privileged"]
    assert {n: p["decision"] for n, p in by_name.items()} == {
        "compliant": "allow", "foreign": "skip", "kpo": "allow", "privileged": "deny"}
    assert {n: p["pod_type"] for n, p in by_name.items()} == {
        "compliant": "executor", "foreign": "other", "kpo": "kpo", "privileged": "executor"}
    privileged = by_name["privileged"]
    assert (privileged["dag_id"], privileged["task_id"]) == ("example_dag", "extract")
    assert {"rule": "baseline: privileged", "mode": "enforce", "message": PRIVILEGED,
            "path": "spec.containers[base].securityContext.privileged"
            } in privileged["violations"]
    assert by_name["compliant"]["violations"] == []
    assert by_name["foreign"] == {
        "namespace": namespace, "name": "foreign", "pod_type": "other", "dag_id": None,
        "task_id": None, "decision": "skip", "would_deny": False, "violations": [],
        "changes": [], "refusals": [], "exempted": []}
    assert {p["path"] for p in by_name["kpo"]["changes"]} >= {
        "/spec/containers/1/securityContext", "/spec/securityContext"}
    # The cluster's pods are judged exactly as the files their creators submitted.
    for name, pod in cluster["submitted"].items():
        offline = audit_pod(pod, bundled)
        assert by_name[name]["decision"] == offline.decision, name
        assert [c["path"] for c in by_name[name]["changes"]] == [
            c["path"] for c in offline.changes], name
        assert [v["message"] for v in by_name[name]["violations"]] == [
            v.message for v in offline.violations], name
    assert report["summary"]["pods"] == 4
    assert (report["summary"]["allow"], report["summary"]["deny"],
            report["summary"]["skip"]) == (2, 1, 1)


def test_policyreports_are_accepted_unchanged_by_the_api_server(
        plane: EnvtestControlPlane, cluster: dict[str, Any]) -> None:
    namespace = cluster["namespace"]
    result = audit(plane.kubeconfig_path, "-n", namespace, "-o", "policyreport")
    assert result.returncode == 1, result.stderr
    reports = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [r["metadata"]["namespace"] for r in reports] == [namespace]
    report = reports[0]
    failed = [r for r in report["results"] if r["result"] == "fail"]
    # Every violation fails, as enforcing would deny it; its mode says what happens today.
    assert [(r["policy"], r["rule"], r["resources"][0]["name"], r["properties"]["mode"])
            for r in failed] == [
        ("restricted-warn", "restricted: runAsNonRoot", "kpo", "warn"),
        ("baseline-enforce", "baseline: privileged", "privileged", "enforce"),
        ("restricted-warn", "restricted: allowPrivilegeEscalation", "privileged", "warn")]
    failed = [r for r in failed if r["properties"]["mode"] == "enforce"]
    assert failed[0]["resources"][0]["uid"] == cluster["stored"]["privileged"]["metadata"]["uid"]
    assert {r["resources"][0]["name"] for r in report["results"]} == {
        "compliant", "privileged", "kpo"}  # the foreign pod has no result
    applied = kubectl(plane, "apply", "--validate=false", "-f", "-", stdin=result.stdout)
    assert applied.returncode == 0, applied.stderr
    got = kubectl(plane, "get", "policyreport", "-n", namespace,
                  "airflow-pod-webhook-audit", "-o", "json")
    assert got.returncode == 0, got.stderr
    stored = json.loads(got.stdout)
    # Nothing pruned: every field we write is in the CRD's schema.
    assert stored["results"] == report["results"]
    assert stored["summary"] == report["summary"]


def test_write_reports_creates_then_updates(plane: EnvtestControlPlane,
                                           cluster: dict[str, Any]) -> None:
    from kubernetes import client

    namespace = cluster["namespace"]
    custom = client.CustomObjectsApi(api(plane))
    args = ("wgpolicyk8s.io", "v1alpha2", namespace, "policyreports")
    for name in [n for n in (r["metadata"]["name"] for r in custom.list_namespaced_custom_object(
            *args)["items"])]:
        custom.delete_namespaced_custom_object(*args, name)
    first = audit(plane.kubeconfig_path, "-n", namespace, "-o", "json", "--write-reports")
    assert first.returncode == 1, first.stderr
    assert f"created {namespace}/airflow-pod-webhook-audit" in first.stderr
    second = audit(plane.kubeconfig_path, "-n", namespace, "-o", "json", "--write-reports")
    assert f"updated {namespace}/airflow-pod-webhook-audit" in second.stderr
    report = custom.get_namespaced_custom_object(*args, "airflow-pod-webhook-audit")
    # The privileged pod's enforce and warn rules, the KPO pod's warn rule: all would deny.
    assert report["summary"]["fail"] == 3
    assert report["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "airflow-pod-webhook"}


def test_a_selector_narrows_the_list(plane: EnvtestControlPlane,
                                    cluster: dict[str, Any]) -> None:
    result = audit(plane.kubeconfig_path, "-n", cluster["namespace"], "-o", "json",
                   "-l", "kubernetes_pod_operator=True")
    # Allowed today, but its warn-mode restricted rules would deny it if enforced.
    assert result.returncode == 1, result.stderr
    assert [p["name"] for p in json.loads(result.stdout)["pods"]] == ["kpo"]


def test_all_namespaces_sees_the_pods(plane: EnvtestControlPlane,
                                     cluster: dict[str, Any]) -> None:
    result = audit(plane.kubeconfig_path, "-A", "-o", "json")
    assert result.returncode == 1, result.stderr
    names = {(p["namespace"], p["name"]) for p in json.loads(result.stdout)["pods"]}
    assert (cluster["namespace"], "privileged") in names


def token_kubeconfig(plane: EnvtestControlPlane, path: Path, token: str) -> Path:
    config = yaml.safe_load(plane.kubeconfig_path.read_text())
    config["users"] = [{"name": "sa", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "sa"
    path.write_text(yaml.safe_dump(config))
    return path


def test_forbidden_and_unreachable_exit_2(plane: EnvtestControlPlane, cluster: dict[str, Any],
                                        tmp_path: Path) -> None:
    from kubernetes import client

    namespace = cluster["namespace"]
    core = client.CoreV1Api(api(plane))
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}},
                                           _preload_content=False)
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    forbidden = audit(token_kubeconfig(plane, tmp_path / "nobody", token), "-n", namespace)
    assert forbidden.returncode == 2
    assert forbidden.stderr.startswith("error: listing pods at https://127.0.0.1:")
    assert "HTTP 403" in forbidden.stderr and "lacks RBAC permission" in forbidden.stderr
    assert "Traceback" not in forbidden.stderr and len(forbidden.stderr.splitlines()) == 1

    config = yaml.safe_load(plane.kubeconfig_path.read_text())
    from tests.support.server_process import free_port

    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    closed = tmp_path / "closed"
    closed.write_text(yaml.safe_dump(config))
    unreachable = audit(closed, "-n", namespace)
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith("error: cannot reach the API server at https://127.")
    assert "Traceback" not in unreachable.stderr and len(unreachable.stderr.splitlines()) == 1


def test_the_components_rbac_is_enough_to_audit_and_write(
        plane: EnvtestControlPlane, cluster: dict[str, Any], tmp_path: Path) -> None:
    """The ClusterRole of deploy/components/audit, bound to a fresh ServiceAccount: it lists
    pods everywhere and writes the reports, and it may do nothing else."""
    from kubernetes import client

    namespace = cluster["namespace"]
    folder = deploy_with_image(ROOT / "deploy" / "overlays" / "audit",
                               "registry.io/team/airflow-pod-webhook:0.1.0", tmp_path)
    rendered = kubectl(plane, "kustomize", str(folder))
    assert rendered.returncode == 0, rendered.stderr
    role = next(d for d in yaml.safe_load_all(rendered.stdout)
                if d and d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "airflow-pod-webhook-audit")
    role["metadata"]["name"] = f"audit-{namespace}"
    rbac = client.RbacAuthorizationV1Api(api(plane))
    rbac.create_cluster_role(role)
    core = client.CoreV1Api(api(plane))
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "auditor"}},
                                           _preload_content=False)
    rbac.create_cluster_role_binding({
        "metadata": {"name": f"audit-{namespace}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role["metadata"]["name"]},
        "subjects": [{"kind": "ServiceAccount", "name": "auditor", "namespace": namespace}]})
    token = core.create_namespaced_service_account_token(
        "auditor", namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    kubeconfig = token_kubeconfig(plane, tmp_path / "auditor", token)
    result = audit(kubeconfig, "-A", "-o", "json", "--write-reports")
    assert result.returncode == 1, result.stderr
    assert f"{namespace}/airflow-pod-webhook-audit" in result.stderr
    # Read-only on pods: the same token may not create one.
    config = yaml.safe_load(kubeconfig.read_text())
    host = config["clusters"][0]["cluster"]["server"]
    ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    configuration = client.Configuration()
    configuration.host, configuration.api_key = host, {"authorization": f"Bearer {token}"}
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca)
    configuration.ssl_ca_cert = str(ca_file)
    limited = client.CoreV1Api(client.ApiClient(configuration))
    with pytest.raises(client.exceptions.ApiException) as refused:
        limited.create_namespaced_pod(namespace, {"metadata": {"name": "x"}, "spec": {
            "containers": [{"name": "x", "image": "x:1"}]}})
    assert refused.value.status == 403
