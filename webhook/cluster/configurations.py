"""The Mutating/ValidatingWebhookConfiguration objects, rendered: pure functions on dicts.

`webhook_configurations()` is the single source of truth: deploy/base/webhooks.yaml comes from it
(tests/test_registration.py fails when they drift), the `manifests` CLI command fills its caBundle,
and `registration.patch_ca_bundle()` creates from it when a configuration does not exist yet.
Which pods the create hooks select is the identity layer's (webhook/hook_selection.py); this
module renders it into CEL. Nothing here talks to an API server or runs kubectl
(cluster/registration.py does).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from webhook.airflow_accounts import username_condition
from webhook.hook_selection import DEFAULT_POD_LABELS, MIRROR_POD_ANNOTATION
from webhook.kube.pod_fields import DNS_SUBDOMAIN, QUALIFIED_NAME

API_VERSION = "admissionregistration.k8s.io/v1"
MUTATING_KIND = "MutatingWebhookConfiguration"
VALIDATING_KIND = "ValidatingWebhookConfiguration"
DEFAULT_NAME = "airflow-pod-webhook"
DEFAULT_SERVICE = "airflow-pod-webhook"
DEFAULT_NAMESPACE = "airflow-pod-webhook"
MUTATING_WEBHOOK = "mutate.airflow-pod-webhook.io"
VALIDATING_WEBHOOK = "validate.airflow-pod-webhook.io"
MUTATE_PATH = "/mutate"
VALIDATE_PATH = "/validate"
SINGLE_CALL_PATH = "/mutate-validate"
REFUSE_PATH = "/refuse"
TIMEOUT_SECONDS = 5
LABELS = {"app.kubernetes.io/name": "airflow-pod-webhook", "app.kubernetes.io/component": "webhook"}


def pod_match_expression(labels: Sequence[tuple[str, str | None]] = DEFAULT_POD_LABELS) -> str:
    """CEL for matchConditions: true when the pod has any of `labels` (value None = key exists).

    matchConditions rather than objectSelector because a selector can only AND its terms and
    we need "executor OR operator OR an admin-chosen label".
    """
    if not labels:
        raise ValueError("at least one pod label is needed, or the webhook would match nothing")
    terms = []
    for key, value in labels:
        # Label syntax excludes quotes and backslashes, so plain quoted CEL literals are safe.
        prefix, slash, name = key.rpartition("/")
        if (slash and not DNS_SUBDOMAIN.match(prefix)) or not QUALIFIED_NAME.match(name) \
                or len(name) > 63:
            raise ValueError(f"invalid label key {key!r}")
        if value and (not QUALIFIED_NAME.match(value) or len(value) > 63):
            raise ValueError(f"invalid label value {value!r} for {key!r}")
        has = f'"{key}" in object.metadata.labels'
        equals = f'object.metadata.labels["{key}"] == "{value}"'
        terms.append(has if value is None else f"({has} && {equals})")
    return "has(object.metadata.labels) && (\n  " + " ||\n  ".join(terms) + "\n)"


# Kubelet-created mirror pods of static pods must never be changed or blocked by us.
NOT_MIRROR_POD = (
    "!has(object.metadata.annotations) || "
    f'!("{MIRROR_POD_ANNOTATION}" in object.metadata.annotations)'
)


# Airflow's accounts as the bundled Settings name them (policies/00-settings.yaml: release
# `airflow` in namespace `airflow`); `manifests` renders the names of the policy folder it
# is given, and tests/test_registration.py keeps this list equal to the bundled Settings'.
DEFAULT_AIRFLOW_USERNAMES: tuple[str, ...] = tuple(
    f"system:serviceaccount:airflow:airflow-{account}"
    for account in ("scheduler", "worker", "triggerer", "dag-processor", "api-server"))

# A pod that will never run a container again: being deleted, or finished. Writes to it are
# judged, but a webhook outage must never block them (finalizer removal, Airflow's cleanup).
# kube-apiserver resets status on a pod UPDATE before admission, so a writer cannot fake it.
FINISHED_POD = (
    "has(object.metadata.deletionTimestamp) || (has(object.status) && "
    'has(object.status.phase) && object.status.phase in ["Succeeded", "Failed"])'
)
LIVE_POD = f"!({FINISHED_POD})"
# What a writer may change on a live pod: the pod itself and the subresources that change
# what runs or where; never pods/status (the kubelet's), and bindings only by Airflow's
# accounts (the kube-scheduler's own bindings never match the writer condition).
WRITE_RULES: tuple[dict[str, Any], ...] = (
    {"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
     "resources": ["pods", "pods/ephemeralcontainers", "pods/resize"], "scope": "Namespaced"},
    {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
     "resources": ["pods/binding"], "scope": "Namespaced"},
)
# Running a command in a container: the chart's pod-launcher Role gives the worker pods/exec on
# every pod of its namespace (KPO reads its XCom sidecar that way), scheduler's included.
CONNECT_RULES: tuple[dict[str, Any], ...] = (
    {"operations": ["CONNECT"], "apiGroups": [""], "apiVersions": ["v1"],
     "resources": ["pods/exec", "pods/attach"], "scope": "Namespaced"},
)
CREATE_RULES: tuple[dict[str, Any], ...] = (
    {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
     "scope": "Namespaced"},
)
WRITES_WEBHOOK = "validate-writes.airflow-pod-webhook.io"
FINISHED_WRITES_WEBHOOK = "validate-finished-writes.airflow-pod-webhook.io"
SYSTEM_WRITES_WEBHOOK = "validate-system-writes.airflow-pod-webhook.io"
OWN_NAMESPACE_WEBHOOK = "refuse-own-namespace.airflow-pod-webhook.io"
CONNECT_WEBHOOK = "validate-exec.airflow-pod-webhook.io"
SYSTEM_NAMESPACE = "kube-system"


def create_match_expression(labels: Sequence[tuple[str, str | None]] = DEFAULT_POD_LABELS,
                            airflow_usernames: Sequence[str] = ()) -> str:
    """CEL for the create hooks: a pod with Airflow's labels, or any pod Airflow's accounts
    write (labels are the author's to write; the username is the API server's)."""
    by_label = pod_match_expression(labels)
    by_writer = username_condition(airflow_usernames)
    return by_label if by_writer is None else f"({by_label}) ||\n({by_writer})"


def encode_ca_bundle(pem: bytes) -> str:
    return base64.b64encode(pem).decode("ascii")


def _client_config(
    path: str, service: str, namespace: str, port: int, url: str | None, ca_bundle: bytes | None
) -> dict[str, Any]:
    if url is not None:
        if not url.startswith("https://") or "?" in url or "#" in url:
            # The apiserver rejects non-https URLs, queries and fragments (§2.1).
            raise ValueError(f"url must be https:// without query or fragment, got {url!r}")
        config: dict[str, Any] = {"url": url.rstrip("/") + path}
    else:
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be 1-65535, got {port}")
        config = {"service": {"name": service, "namespace": namespace, "path": path, "port": port}}
    if ca_bundle:
        config["caBundle"] = encode_ca_bundle(ca_bundle)
    return config


def webhook_configurations(
    ca_bundle_pem: bytes | None,
    service: str = DEFAULT_SERVICE,
    namespace: str = DEFAULT_NAMESPACE,
    port: int = 443,
    url: str | None = None,
    *,
    pod_labels: Sequence[tuple[str, str | None]] = DEFAULT_POD_LABELS,
    single_call: bool = False,
    airflow_usernames: Sequence[str] = DEFAULT_AIRFLOW_USERNAMES,
) -> list[dict[str, Any]]:
    """[MutatingWebhookConfiguration, ValidatingWebhookConfiguration] as plain dicts.

    `url` (e.g. https://127.0.0.1:8443, for envtest or a webhook outside the cluster) replaces
    the Service reference. `pod_labels` widens or narrows which pods are sent to the webhook.
    `airflow_usernames` are Airflow's accounts (Settings identity, see
    PolicySet.settings.airflow_usernames): every pod they create is sent whatever its labels,
    and so is every change they make to a pod afterwards, in every namespace (see
    `_writer_hooks`). Each request matches at most one validating hook.
    """
    excluded = list(dict.fromkeys([SYSTEM_NAMESPACE, namespace]))

    def webhook(name: str, path: str, rules: Sequence[dict[str, Any]], operator: str,
                namespaces: list[str], conditions: list[tuple[str, str]],
                failure: str) -> dict[str, Any]:
        return {
            "name": name,
            "clientConfig": _client_config(path, service, namespace, port, url, ca_bundle_pem),
            "rules": [dict(rule, operations=list(rule["operations"]),
                           apiGroups=list(rule["apiGroups"]),
                           apiVersions=list(rule["apiVersions"]),
                           resources=list(rule["resources"])) for rule in rules],
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": operator,
                     "values": list(namespaces)}
                ]
            },
            "matchConditions": [{"name": n, "expression": e} for n, e in conditions],
            "matchPolicy": "Equivalent",
            "failurePolicy": failure,
            "sideEffects": "None",
            "timeoutSeconds": TIMEOUT_SECONDS,
            "admissionReviewVersions": ["v1"],
        }

    selected = [("airflow-pod", create_match_expression(pod_labels, airflow_usernames)),
                ("not-mirror-pod", NOT_MIRROR_POD)]

    def create_hook(name: str, path: str, failure: str) -> dict[str, Any]:
        # CREATE only: our defaults are for a new pod; what later writes change is judged by
        # the writer hooks. Never kube-system nor our own namespace (no deadlock for system
        # pods or our own); Airflow's accounts are judged there by the writer hooks.
        return webhook(name, path, CREATE_RULES, "NotIn", excluded, selected, failure)

    writer_hooks = _writer_hooks(webhook, airflow_usernames, namespace)
    if single_call:
        # One call per pod create: the mutating hook also judges the pod it produces, so it
        # must fail closed, and a later mutating webhook's change is judged on reinvocation.
        mutating = create_hook(MUTATING_WEBHOOK, SINGLE_CALL_PATH, "Fail")
        mutating["reinvocationPolicy"] = "IfNeeded"
        configs = [(MUTATING_KIND, [mutating])]
        if writer_hooks:
            configs.append((VALIDATING_KIND, writer_hooks))
    else:
        # Fail open: a webhook outage must not stop Airflow; the validating hook still enforces.
        mutating = create_hook(MUTATING_WEBHOOK, MUTATE_PATH, "Ignore")
        # Re-run after later injectors (e.g. sidecars) so their containers get our defaults too.
        mutating["reinvocationPolicy"] = "IfNeeded"
        # Fail closed: an unchecked pod is exactly what this webhook exists to prevent.
        validating = create_hook(VALIDATING_WEBHOOK, VALIDATE_PATH, "Fail")
        configs = [(MUTATING_KIND, [mutating]), (VALIDATING_KIND, [validating, *writer_hooks])]
    return [
        {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": {"name": DEFAULT_NAME, "labels": dict(LABELS)},
            "webhooks": hooks,
        }
        for kind, hooks in configs
    ]


def _writer_hooks(webhook: Any, airflow_usernames: Sequence[str], namespace: str
                  ) -> list[dict[str, Any]]:
    """The creator-scoped validating hooks: only requests by Airflow's accounts match them.

    - every later write (UPDATE of a pod, its ephemeral containers, its resize; a binding) in
      every namespace but ours: fail closed on a live pod, open on a finished one (deleting a
      pod, removing its finalizers, Airflow's cleanup of a done pod never wait on us);
    - a pod created in kube-system, which the label-selected hooks leave out;
    - anything in our own namespace, refused outright: a pod there could mount our TLS Secret
      or join our Service and answer admission reviews.
    """
    writer = username_condition(airflow_usernames)
    if writer is None:
        return []
    ours = [namespace]
    hooks = [
        webhook(WRITES_WEBHOOK, VALIDATE_PATH, WRITE_RULES, "NotIn", ours,
                [("airflow-writer", writer), ("live-pod", LIVE_POD)], "Fail"),
        webhook(FINISHED_WRITES_WEBHOOK, VALIDATE_PATH, WRITE_RULES, "NotIn", ours,
                [("airflow-writer", writer), ("finished-pod", FINISHED_POD)], "Ignore"),
    ]
    # Its own hook, in every namespace (ours too: the judge admits only the XCom sidecar): a
    # CONNECT's object is PodExecOptions, which the pod conditions above cannot read.
    hooks.append(webhook(CONNECT_WEBHOOK, VALIDATE_PATH, CONNECT_RULES, "Exists", [],
                         [("airflow-writer", writer)], "Fail"))
    if namespace != SYSTEM_NAMESPACE:
        hooks.append(webhook(SYSTEM_WRITES_WEBHOOK, VALIDATE_PATH, CREATE_RULES, "In",
                             [SYSTEM_NAMESPACE], [("airflow-writer", writer),
                                                  ("not-mirror-pod", NOT_MIRROR_POD)], "Fail"))
    own_rules = [dict(CREATE_RULES[0], operations=["CREATE", "UPDATE"],
                      resources=["pods", "pods/ephemeralcontainers", "pods/resize"]),
                 WRITE_RULES[1]]
    hooks.append(webhook(OWN_NAMESPACE_WEBHOOK, REFUSE_PATH, own_rules, "In", ours,
                         [("airflow-writer", writer),
                          ("not-deleted", "!has(object.metadata.deletionTimestamp)")], "Fail"))
    return hooks


def set_ca_bundle(objects: Iterable[dict[str, Any]], ca_bundle_pem: bytes) -> None:
    """Fill caBundle of every webhook in every webhook configuration among `objects`, in place."""
    for obj in objects:
        if obj.get("kind") in (MUTATING_KIND, VALIDATING_KIND):
            for webhook in obj.get("webhooks") or []:
                webhook.setdefault("clientConfig", {})["caBundle"] = encode_ca_bundle(ca_bundle_pem)


def set_airflow_usernames(objects: list[dict[str, Any]], airflow_usernames: Sequence[str],
                          pod_labels: Sequence[tuple[str, str | None]] = DEFAULT_POD_LABELS
                          ) -> None:
    """Render Airflow's accounts into every hook among `objects` (as webhook_configurations
    would), in place: the create hooks' `airflow-pod` condition and the writer hooks'
    `airflow-writer` one; with no accounts, the writer hooks go (they would match nothing)."""
    writer = username_condition(airflow_usernames)
    for obj in objects:
        if obj.get("kind") not in (MUTATING_KIND, VALIDATING_KIND):
            continue
        kept = []
        for hook in obj.get("webhooks") or []:
            conditions = hook.get("matchConditions") or []
            if writer is None and any(c.get("name") == "airflow-writer" for c in conditions):
                continue
            for condition in conditions:
                if condition.get("name") == "airflow-pod":
                    condition["expression"] = create_match_expression(pod_labels,
                                                                      airflow_usernames)
                elif condition.get("name") == "airflow-writer":
                    condition["expression"] = writer
            kept.append(hook)
        obj["webhooks"] = kept


# The registry of the documentation's examples, which no node can pull: `manifests --all`
# refuses it.
PLACEHOLDER_REGISTRY = "registry.example.com/"
# [host[:port]/]path[:tag][@sha256:digest]; loose on purpose, it only catches typos and flags.
IMAGE_REF = re.compile(
    r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?(:\w[\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)


def webhook_containers(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The webhook container of our Deployment among `objects` (empty when there is none)."""
    return [
        container
        for obj in objects
        if obj.get("kind") == "Deployment" and obj.get("metadata", {}).get("name") == DEFAULT_NAME
        for container in obj["spec"]["template"]["spec"]["containers"]
        if container.get("name") == "webhook"
    ]


def set_webhook_image(objects: Iterable[dict[str, Any]], image: str) -> None:
    """Point the webhook container at `image` (REGISTRY/NAME[:TAG][@sha256:DIGEST]), in place."""
    if not IMAGE_REF.match(image):
        raise ValueError(f"not an image reference: {image!r} (e.g. registry.io/team/name:tag)")
    objects = list(objects)
    containers = webhook_containers(objects)
    if not containers:
        raise ValueError(f"no Deployment {DEFAULT_NAME} with a container `webhook` to set")
    # The audit CronJob (components/audit) runs the same image.
    audit = [container
             for obj in objects
             if obj.get("kind") == "CronJob"
             and obj.get("metadata", {}).get("name") == f"{DEFAULT_NAME}-audit"
             for container in obj["spec"]["jobTemplate"]["spec"]["template"]["spec"][
                 "containers"]
             if container.get("name") == "audit"]
    for container in [*containers, *audit]:
        container["image"] = image


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Block style for multi-line strings (CEL expressions, policy files) keeps output readable.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(objects: Iterable[dict[str, Any]]) -> str:
    """Multi-document YAML suitable for `kubectl apply -f -`."""
    return yaml.dump_all(
        list(objects), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )
