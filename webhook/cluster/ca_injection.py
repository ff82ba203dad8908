"""Self-registration: keep our own webhook configurations' caBundle trusting the CA we serve from.

`serve --patch-ca-bundle` starts one `CABundleInjector` thread in the gunicorn master. It stats
`<cert-dir>/ca.crt` every few seconds and, at start, whenever the file changes (a Secret volume
update) and every `resync_interval` (a `kubectl apply` may have wiped caBundle), calls
`webhook.cluster.registration.patch_ca_bundle`, which adds the CA to both configurations and
keeps the still-valid CAs already there: during a CA rotation the old and the new CA are both
trusted until the old one is removed by hand. Failures are logged and retried with exponential
backoff; they never stop the server.

The decision (`decide`) is pure; `CABundleInjector.poll_once` does the I/O around it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from webhook.cluster.registration import (
    DEFAULT_NAME,
    DEFAULT_NAMESPACE,
    DEFAULT_SERVICE,
    merge_ca_bundles,
    patch_ca_bundle,
)

__all__ = [
    "CABundleInjector",
    "Decision",
    "FileStamp",
    "InjectorSettings",
    "InjectorState",
    "decide",
    "file_stamp",
    "kubernetes_patcher",
    "load_api_client",
]

log = logging.getLogger("airflow_pod_webhook.ca_injection")

# (st_mtime_ns, st_size, st_ino) of ca.crt, following symlinks: a kubelet `..data` swap changes
# the inode even when mtime and size happen to match.
FileStamp = tuple[int, int, int]


def file_stamp(path: Path) -> FileStamp | None:
    """The stamp of `path`, or None when it does not exist (yet)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True)
class InjectorSettings:
    poll_interval: float = 5.0  # seconds between stats of ca.crt
    resync_interval: float = 600.0  # re-assert caBundle this often; 0 disables
    backoff_initial: float = 2.0  # first retry delay after a failure
    backoff_max: float = 120.0  # retry delay cap

    def backoff(self, failures: int) -> float:
        """Delay before retry number `failures` (1-based): doubling, capped."""
        return min(self.backoff_max, self.backoff_initial * 2 ** max(0, failures - 1))


@dataclass(frozen=True)
class InjectorState:
    applied_stamp: FileStamp | None = None  # ca.crt as of the last successful patch
    applied_at: float | None = None  # monotonic time of that patch
    failures: int = 0  # consecutive failed attempts
    retry_at: float = 0.0  # no attempt before this monotonic time


@dataclass(frozen=True)
class Decision:
    patch: bool
    reason: str


def decide(state: InjectorState, stamp: FileStamp | None, now: float,
           settings: InjectorSettings) -> Decision:
    """Whether to patch caBundle now, given what was applied and what ca.crt looks like."""
    if stamp is None:
        return Decision(False, "no ca.crt")
    if now < state.retry_at:
        return Decision(False, "backing off after a failure")
    if state.applied_stamp is None:
        return Decision(True, "start" if state.failures == 0 else "retry")
    if stamp != state.applied_stamp:
        return Decision(True, "ca.crt changed")
    if settings.resync_interval > 0 and state.applied_at is not None and (
            now - state.applied_at >= settings.resync_interval):
        return Decision(True, "resync")
    return Decision(False, "up to date")


def after_success(state: InjectorState, stamp: FileStamp, now: float) -> InjectorState:
    return InjectorState(applied_stamp=stamp, applied_at=now)


def after_failure(state: InjectorState, now: float, settings: InjectorSettings) -> InjectorState:
    failures = state.failures + 1
    return replace(state, failures=failures, retry_at=now + settings.backoff(failures))


class CABundleInjector:
    """Polls `ca_path` and hands its PEM to `patch` when `decide` says so."""

    def __init__(self, ca_path: Path | str, patch: Callable[[bytes], None],
                 settings: InjectorSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ca_path = Path(ca_path)
        self.patch = patch
        self.settings = settings or InjectorSettings()
        self.clock = clock
        self.state = InjectorState()
        self.patches = 0  # successful patch calls, for tests and logs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_reason = ""

    def poll_once(self) -> Decision:
        """One poll: stat, decide, and patch when due. Never raises."""
        now = self.clock()
        stamp = file_stamp(self.ca_path)
        decision = decide(self.state, stamp, now, self.settings)
        if not decision.patch:
            if decision.reason == "no ca.crt" and self._last_reason != decision.reason:
                log.warning("caBundle injection: %s does not exist yet; waiting for it",
                            self.ca_path)
            self._last_reason = decision.reason
            return decision
        self._last_reason = decision.reason
        assert stamp is not None
        try:
            pem = self.ca_path.read_bytes()
            merge_ca_bundles(b"", pem)  # refuse to send anything that is not a valid CA PEM
            self.patch(pem)
        except Exception as exc:  # never fatal: the server keeps serving, we retry later
            self.state = after_failure(self.state, now, self.settings)
            log.error("caBundle injection (%s) failed, attempt %d, retrying in %.0fs: %s",
                      decision.reason, self.state.failures,
                      self.settings.backoff(self.state.failures), describe_error(exc))
            return decision
        self.state = after_success(self.state, stamp, now)
        self.patches += 1
        if decision.reason != "resync":
            log.info("caBundle injection (%s): webhook configurations trust %s",
                     decision.reason, self.ca_path)
        return decision

    def run(self, max_polls: int | None = None) -> None:
        """Poll until stop() (or `max_polls` polls, for tests)."""
        polls = 0
        while not self._stop.is_set() and (max_polls is None or polls < max_polls):
            self.poll_once()
            polls += 1
            self._stop.wait(self.settings.poll_interval)

    def start(self) -> threading.Thread:
        """Run in a daemon thread: it dies with the process and never delays shutdown."""
        self._thread = threading.Thread(target=self.run, name="ca-bundle-injector", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def describe_error(exc: BaseException) -> str:
    """One line for the log; RBAC and missing-object errors get the fix spelled out."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or type(exc).__name__
    if status == 403:
        return (f"403 Forbidden ({reason}): the ServiceAccount needs get and patch on both "
                f"webhook configurations named {DEFAULT_NAME} (the kustomize component "
                "deploy/components/self-patch-ca-bundle grants them), and they must already "
                "exist: it may not create them, so apply deploy/ first")
    if status is not None:
        return f"HTTP {status} {reason}"
    return f"{type(exc).__name__}: {exc}"


# --- the Kubernetes side ---------------------------------------------------------------------


def load_api_client() -> Any:
    """An ApiClient from $KUBECONFIG when set (envtest, local runs), else in-cluster config.

    In cluster it uses the pod's ServiceAccount token, re-read as the kubelet rotates it.
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    kubeconfig = os.environ.get("KUBECONFIG")
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


class _TimeoutAdmissionApi:
    """AdmissionregistrationV1Api with a request timeout on every call, so a hung API server
    cannot hang the injector thread (patch_ca_bundle passes none)."""

    def __init__(self, api: Any, timeout: float) -> None:
        self._api, self._timeout = api, timeout

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._api, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("_request_timeout", self._timeout)
            return method(*args, **kwargs)

        return call


def kubernetes_patcher(
    names: Sequence[str] = (DEFAULT_NAME,),
    service: str = DEFAULT_SERVICE,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    request_timeout: float = 10.0,
    api_factory: Callable[[], Any] | None = None,
) -> Callable[[bytes], None]:
    """A `patch` callable for CABundleInjector: patch_ca_bundle through the kubernetes client.

    The client is built on first use (and rebuilt after a failure to build it), so a missing
    kubeconfig or token is a logged, retried failure rather than a crash at start-up.
    """
    cache: dict[str, Any] = {}

    def default_factory() -> Any:
        from kubernetes import client

        return client.AdmissionregistrationV1Api(load_api_client())

    def patch(ca_pem: bytes) -> None:
        if "api" not in cache:
            cache["api"] = _TimeoutAdmissionApi((api_factory or default_factory)(),
                                                request_timeout)
        patch_ca_bundle(cache["api"], ca_pem, names, service=service, namespace=namespace)

    return patch
