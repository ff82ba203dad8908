"""Prometheus metrics of the server: defined here, recorded only at the edges (app, server).

Under gunicorn every worker is its own process, so the server runs prometheus_client in
multiprocess mode: each worker writes its values to mmap files in PROMETHEUS_MULTIPROC_DIR
and `/metrics` (answered by any worker) sums them. Without that variable (tests, the Flask
test client) the metrics live in this process's own registry.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "airflow_pod_webhook"
# Reviews take well under a millisecond to a few milliseconds; kube-apiserver's default
# timeout is 10 s, so 1 s and beyond is already an incident.
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                   0.5, 1.0)
PATCH_OPS_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500)

# What happened to one request on /mutate or /validate, besides its decision.
ANSWERED = "answered"      # an AdmissionReview (allow or deny) with HTTP 200
REJECTED = "rejected"      # a 4xx JSON error: not an AdmissionReview we could answer
NOT_READY = "not_ready"    # 503: no policy set loaded yet
ERROR = "error"            # a bug of ours, answered by review.last_resort


def prepare_multiprocess_dir() -> Path:
    """Point prometheus_client at an empty multiprocess folder; call in the gunicorn master
    before any worker forks.

    An explicit PROMETHEUS_MULTIPROC_DIR is created if missing and emptied of stale files
    (counters would otherwise continue from the last run); without one a fresh folder is made.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        folder = Path(configured)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="airflow-pod-webhook-metrics-"))
        os.environ[MULTIPROC_ENV] = str(folder)
    # prometheus_client picks its value class when first imported, possibly before the
    # variable was set: pick again so metrics created after this are multiprocess ones.
    values.ValueClass = values.get_value_class()
    return folder


def remove_multiprocess_dir(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """gunicorn child_exit hook: drop the dead worker's live gauges (its counters stay)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


class WebhookMetrics:
    """Every metric the server exposes; one instance per process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_admission_requests", "Admission requests by hook, decision "
            "(allow, deny, skip, invalid) and outcome (answered, rejected, not_ready, error)",
            ["hook", "decision", "outcome"], registry=r)
        self.duration = Histogram(
            f"{PREFIX}_admission_duration_seconds", "Time from request to answer, per hook",
            ["hook"], buckets=LATENCY_BUCKETS, registry=r)
        self.late = Counter(
            f"{PREFIX}_admission_deadline_exceeded", "Answers given after the API server's "
            "?timeout= had passed (the API server had already applied its failurePolicy)",
            ["hook"], registry=r)
        self.unauthenticated = Counter(
            f"{PREFIX}_unauthenticated_requests", "Review calls refused for want of a "
            "verified client certificate (mutual TLS); never counted as admission requests",
            ["hook"], registry=r)
        self.patch_ops = Histogram(
            f"{PREFIX}_patch_operations", "JSON patch operations per allowed mutation",
            buckets=PATCH_OPS_BUCKETS, registry=r)
        self.reloads = Counter(
            f"{PREFIX}_policy_reloads", "Policy folder loads after a change, by result "
            "(success, failure); a failure keeps the last good set", ["result"], registry=r)
        self.load_errors = Gauge(
            f"{PREFIX}_policy_load_errors", "Errors in the policy folder as last read "
            "(0 when it loaded); the worst worker", multiprocess_mode="livemax", registry=r)
        self.revision = Gauge(
            f"{PREFIX}_policy_revision_info", "1 for the policy revision being served "
            "(content hash of the last good set)", ["revision"],
            multiprocess_mode="livemax", registry=r)
        self.cert_expiry = Gauge(
            f"{PREFIX}_serving_cert_expiry_timestamp_seconds", "Unix time the serving "
            "certificate expires (the oldest any worker serves)",
            multiprocess_mode="livemin", registry=r)
        self._served_revision: str | None = None
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def admission(self, hook: str, decision: str, outcome: str, seconds: float,
                  patch_ops: int = 0) -> None:
        """One request on /mutate or /validate: the hot path, so the labelled children are
        looked up once per label set and kept (labels() takes a lock and formats strings)."""
        key = (hook, decision, outcome)
        children = self._children.get(key)
        if children is None:  # a race here only makes the same children twice
            children = self._children[key] = (self.requests.labels(*key),
                                              self.duration.labels(hook))
        children[0].inc()
        children[1].observe(seconds)
        if patch_ops:
            self.patch_ops.observe(patch_ops)

    def unauthenticated_call(self, hook: str) -> None:
        self.unauthenticated.labels(hook).inc()

    def deadline_exceeded(self, hook: str) -> None:
        self.late.labels(hook).inc()

    def policy_loaded(self, ok: bool, error_count: int, served_revision: str | None) -> None:
        """After each policy load attempt: its result and the revision now served."""
        self.reloads.labels("success" if ok else "failure").inc()
        self.load_errors.set(error_count)
        if served_revision != self._served_revision:
            if self._served_revision is not None:
                # multiprocess files cannot forget a label set: 0 marks it as no longer served
                self.revision.labels(self._served_revision).set(0)
            if served_revision is not None:
                self.revision.labels(served_revision).set(1)
            self._served_revision = served_revision

    def serving_cert_loaded(self, not_after_unix: float) -> None:
        self.cert_expiry.set(not_after_unix)

    def exposition(self) -> tuple[bytes, str]:
        """The text format for `GET /metrics`: every worker's values when multiprocess."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        WorkerFilesCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class WorkerFilesCollector(multiprocess.MultiProcessCollector):
    """Every worker's values, skipping files too short to hold their 8-byte header.

    prometheus_client creates a worker's file before sizing it: a scrape in that window, or
    after a worker was killed inside it, raised struct.error and failed the whole scrape with
    a 500 (prometheus/client_python#1199), for good in the second case.
    """

    def collect(self):  # type: ignore[no-untyped-def]
        files = glob.glob(os.path.join(self._path, "*.db"))
        return self.merge([f for f in files if _size(f) >= 8], accumulate=True)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # removed between the listing and now: nothing to read
        return -1
