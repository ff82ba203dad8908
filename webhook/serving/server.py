"""Run the Flask app under gunicorn with TLS, the way kube-apiserver calls it.

- `gthread` workers: kube-apiserver keeps HTTP/1.1 connections alive and reuses them; the
  sync worker closes every connection, so each review would pay a TLS handshake. Ours
  (serving/worker.py) reads each request whole before a thread gets it, so a peer stalling
  mid-handshake or mid-request cannot take the threads.
- keep-alive longer than Go's idle-connection timeout (90 s), so the API server, not we,
  closes idle connections (a server-side close races with a request being sent).
- one TLS context, reused for every connection and rebuilt when tls.crt/tls.key change on
  disk (a mounted Secret updating): rotation without a restart or a dropped connection.
- prometheus_client in multiprocess mode (a folder prepared by the master, dead workers'
  gauges dropped in `child_exit`), so `/metrics` from any worker covers all of them.
"""

from __future__ import annotations

import gc
import logging
import os
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from webhook.budget import HOLD_REFUSALS_SECONDS
from webhook.cluster.certs import cert_not_after
from webhook.policy.load import LoadResult
from webhook.policy.store import PolicyStore
from webhook.serving import metrics as m
from webhook.serving.app import create_app
from webhook.serving.worker import WORKER_CONNECTIONS

log = logging.getLogger("airflow_pod_webhook.server")
KEEPALIVE_SECONDS = 120


@dataclass(frozen=True)
class ServeOptions:
    policies: Path
    certfile: Path
    keyfile: Path
    host: str = "0.0.0.0"  # reachable from the API server, not only loopback
    port: int = 8443
    workers: int = 2
    threads: int = 8
    reload_interval: float = 2.0
    graceful_timeout: int = 25
    log_level: str = "info"
    # Mutual TLS: review calls must present a client certificate signed by this CA (the one
    # `certs --apiserver-client` issues kube-apiserver's from); health and metrics need none.
    client_ca: Path | None = None
    # Seconds a refusal no real caller gets is held (budget.HOLD_REFUSALS_SECONDS).
    hold_refusals: float = HOLD_REFUSALS_SECONDS


class ReloadingTLSContext:
    """A server SSLContext rebuilt when the cert or key files change.

    Checked on each new connection (two stat calls). A half-written pair fails to load and
    the previous context keeps serving until the pair is whole again.
    """

    def __init__(self, certfile: Path, keyfile: Path,
                 on_load: Callable[[float], None] | None = None,
                 client_ca: Path | None = None) -> None:
        self.certfile, self.keyfile = Path(certfile), Path(keyfile)
        self.client_ca = Path(client_ca) if client_ca is not None else None
        self.on_load = on_load  # called with the loaded cert's expiry (unix time)
        self._stamp: tuple | None = None
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self.loads = 0

    def _file_stamp(self) -> tuple:
        files = (self.certfile, self.keyfile, *([self.client_ca] if self.client_ca else []))
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in map(os.stat, files))

    def build(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile=str(self.certfile), keyfile=str(self.keyfile))
        context.set_alpn_protocols(["http/1.1"])
        if self.client_ca is not None:
            # Optional at the TLS layer: the kubelet's probes present no certificate, so the
            # review endpoints (not the handshake) refuse a caller without a verified one. A
            # certificate that is presented must verify, or the handshake fails.
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(cafile=str(self.client_ca))
        return context

    def get(self) -> ssl.SSLContext:
        try:
            stamp = self._file_stamp()
        except OSError:
            stamp = self._stamp  # mid-swap: keep serving the context we have
        if stamp != self._stamp or self._context is None:
            with self._lock:
                if stamp != self._stamp or self._context is None:
                    try:
                        self._context = self.build()
                        self._stamp = stamp
                        self.loads += 1
                        if self.loads > 1:
                            log.info("serving certificate reloaded from %s", self.certfile)
                        self.report_expiry()
                    except (OSError, ssl.SSLError) as exc:
                        if self._context is None:
                            raise
                        log.warning("new certificate not loadable yet (%s); keeping the old", exc)
        assert self._context is not None
        return self._context

    def report_expiry(self) -> None:
        """Tell on_load the current cert's expiry (after each load, and once per worker)."""
        if self.on_load is None:
            return
        try:
            self.on_load(cert_not_after(self.certfile.read_bytes()).timestamp())
        except Exception:  # an observer must never stop a new certificate from serving
            log.exception("could not read the expiry of %s", self.certfile)


class WebhookServer(BaseApplication):
    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.metrics: m.WebhookMetrics | None = None  # per worker, made in load()
        self.tls = ReloadingTLSContext(options.certfile, options.keyfile,
                                       on_load=self._cert_loaded, client_ca=options.client_ca)
        # Built before the fork: a worker (or its replacement) whose first handshake falls
        # mid-rotation keeps a whole pair to fall back on, instead of gunicorn answering that
        # handshake with a plaintext HTTP 400.
        self.tls.get()
        # Loaded once in the master: workers fork with the compiled set (shared pages, and
        # a thousand policy files are compiled once, not once per worker).
        self.store = PolicyStore(options.policies, interval=options.reload_interval)
        self.store.reload_if_changed()
        # Everything loaded so far lives as long as the process: keep it out of the cyclic
        # GC, whose passes would otherwise write to (and so un-share) every forked page.
        gc.freeze()
        super().__init__()

    def _cert_loaded(self, not_after_unix: float) -> None:
        if self.metrics is not None:
            self.metrics.serving_cert_loaded(not_after_unix)

    def load_config(self) -> None:
        o = self.options
        settings: dict[str, Any] = {
            "bind": [f"[{o.host}]:{o.port}" if ":" in o.host else f"{o.host}:{o.port}"],
            "workers": o.workers,
            "worker_class": "webhook.serving.worker.WholeRequestWorker",
            "threads": o.threads,
            "worker_connections": WORKER_CONNECTIONS,
            "keepalive": KEEPALIVE_SECONDS,
            "graceful_timeout": o.graceful_timeout,
            "timeout": 30,
            "certfile": str(o.certfile),
            "keyfile": str(o.keyfile),
            "loglevel": o.log_level,
            "errorlog": "-",
            "accesslog": None,
            "proc_name": "airflow-pod-webhook",
            # Heartbeat files in memory, not on a possibly read-only root filesystem.
            "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        }
        for key, value in settings.items():
            if value is not None:
                self.cfg.set(key, value)
        tls = self.tls
        self.cfg.set("ssl_context", lambda conf, default_factory: tls.get())
        self.cfg.set("child_exit", lambda arbiter, worker: m.worker_exited(worker.pid))

    def load(self) -> Any:
        # Runs in each worker after fork: each worker owns its store and watcher thread.
        configure_logging(self.options.log_level)
        metrics = self.metrics = m.WebhookMetrics()
        store = self.store  # this worker's copy of the master's, fingerprint included

        def policy_loaded(result: LoadResult) -> None:
            served = store.state.policy_set
            metrics.policy_loaded(result.policy_set is not None, len(result.errors),
                                  served.revision if served else None)

        store.on_reload = policy_loaded
        if not store.reload_if_changed():  # unchanged since the fork: report what we serve
            state = store.state
            metrics.policy_loaded(state.policy_set is not None and not state.errors,
                                  len(state.errors),
                                  state.policy_set.revision if state.policy_set else None)
        store.watch()
        self.tls.report_expiry()  # the master may have built the context before the fork
        return create_app(store, metrics,
                          require_client_cert=self.options.client_ca is not None,
                          hold_refusals=self.options.hold_refusals)


def configure_logging(level: str = "info") -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())


def serve(options: ServeOptions) -> None:
    """Run until SIGTERM; the metrics folder is prepared before the workers fork."""
    own_folder = m.MULTIPROC_ENV not in os.environ
    folder = m.prepare_multiprocess_dir()
    master = os.getpid()
    try:
        WebhookServer(options).run()
    finally:
        # Exiting workers unwind through here too (gunicorn's sys.exit in the child).
        if own_folder and os.getpid() == master:
            m.remove_multiprocess_dir(folder)
