"""Pod creates streaming through the API server from several threads, as a busy scheduler
sends them, while a test changes something underneath (policy swap, cert rotation, a worker
killed). Every create is recorded: refused (with kube-apiserver's message) or created (with
its metadata), so a test can say exactly how many failed and which pods missed our patch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.harness import E2EEnvironment, api_message
from tests.e2e.scenarios import APPLIED, scheduler_username


@dataclass
class Outcome:
    name: str
    started: float  # time.monotonic() when the create was sent
    metadata: dict | None = None  # the created pod's metadata; None when refused
    error: str = ""  # "<HTTP status> <message>" when refused

    @property
    def mutated(self) -> bool:
        return self.metadata is not None and APPLIED in (self.metadata.get("annotations") or {})


@dataclass
class CreateStream:
    """`threads` creators of pods built by `make_pod(name)` in `namespace`, as the scheduler."""

    e2e: E2EEnvironment
    namespace: str
    make_pod: Callable[[str], dict]
    threads: int = 4
    prefix: str = "stream"
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _pause: threading.Event = field(default_factory=threading.Event)
    _resume: threading.Event = field(default_factory=threading.Event)
    _idle: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _run(self, index: int) -> None:
        from kubernetes.client.exceptions import ApiException

        core = self.e2e.core(scheduler_username(self.namespace))  # one connection pool each
        n = 0
        while not self._stop.is_set():
            if self._pause.is_set():
                self._idle.release()
                self._resume.wait()
                continue
            n += 1
            outcome = Outcome(f"{self.prefix}-{index}-{n}", time.monotonic())
            try:
                created = self.e2e.create_pod_with(core, self.make_pod(outcome.name))
                outcome.metadata = created["metadata"]
            except ApiException as exc:
                outcome.error = f"{exc.status} {api_message(exc)}"
            except Exception as exc:  # the client itself failed: still a failed create
                outcome.error = repr(exc)
            with self._lock:
                self.outcomes.append(outcome)

    def __enter__(self) -> CreateStream:
        for i in range(self.threads):
            thread = threading.Thread(target=self._run, args=(i,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._pause.clear()
        self._resume.set()
        for thread in self._workers:
            thread.join(timeout=60)

    def quiesce(self) -> None:
        """Block until every thread is between creates; `go_on` lets them continue."""
        self._resume.clear()
        self._pause.set()
        for _ in range(self.threads):
            if not self._idle.acquire(timeout=60):
                raise AssertionError("a create never finished")

    def go_on(self) -> None:
        self._pause.clear()
        self._resume.set()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until at least `count` creates finished in total."""
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.outcomes)} creates in {timeout:.0f}s")
            time.sleep(0.05)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.metadata is None]

    @property
    def unmutated(self) -> list[Outcome]:
        """Created without our patch: the mutating call failed and `Ignore` hid it."""
        return [o for o in self.outcomes if o.metadata is not None and not o.mutated]

    def summary(self) -> str:
        return (f"{len(self.outcomes)} creates by {self.threads} threads: "
                f"{len(self.failed)} failed, {len(self.unmutated)} created without our patch")
