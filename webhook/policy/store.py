"""The live policy set of one server process, swapped atomically when the folder changes.

A ConfigMap mount or git-sync updates the folder by an atomic symlink swap; every worker
polls a cheap fingerprint (names, sizes, mtimes) and reloads only when it moves. A folder
that fails to load keeps the last good set and exposes its errors until it is fixed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from webhook.policy.compile import PolicyError
from webhook.policy.load import LoadResult, load_policy_dir, policy_files
from webhook.policy.model import PolicySet

log = logging.getLogger("airflow_pod_webhook.policy")
CONSISTENT_READ_ATTEMPTS = 3


@dataclass(frozen=True)
class StoreState:
    policy_set: PolicySet | None
    errors: tuple[PolicyError, ...] = ()
    failed_revision: str = ""  # the revision that failed to load, if the last attempt failed
    loaded_at: float = 0.0


class PolicyStore:
    def __init__(self, folder: Path | str, *, interval: float = 2.0,
                 on_reload: Callable[[LoadResult], None] | None = None) -> None:
        self.folder = Path(folder)
        self.interval = interval
        self.on_reload = on_reload
        self._state = StoreState(None)
        self._fingerprint: tuple | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def state(self) -> StoreState:
        return self._state  # one attribute read: readers never see a half-swapped state

    @property
    def current(self) -> PolicySet | None:
        return self._state.policy_set

    def fingerprint(self) -> tuple:
        try:
            files = policy_files(self.folder)
            return tuple((p.name, st.st_size, st.st_mtime_ns, st.st_ino)
                         for p in files for st in [os.stat(p)])
        except OSError as exc:
            return (("<error>", str(exc)),)

    def reload_if_changed(self) -> bool:
        """Load the folder if it changed; True when a new set was swapped in."""
        with self._lock:
            before = self.fingerprint()
            if before == self._fingerprint:
                return False
            result = self._read_consistently(before)
            if result is None:
                self._fingerprint = None  # still moving or unreadable: try again next tick
                return False
            result, self._fingerprint = result
            old = self._state.policy_set
            if result.policy_set is not None:
                changed = old is None or old.revision != result.policy_set.revision
                self._state = StoreState(result.policy_set, (), "", time.time())
                if changed:
                    log.info("policy set %s loaded from %s (%d documents)",
                             result.revision, self.folder, result.policy_set.document_count)
            else:
                changed = False
                self._state = StoreState(old, result.errors, result.revision,
                                         self._state.loaded_at)
                log.error("policy folder %s (revision %s) rejected, keeping %s: %s",
                          self.folder, result.revision, old.revision if old else "nothing",
                          "; ".join(str(e) for e in result.errors))
            if self.on_reload is not None:
                try:
                    self.on_reload(result)
                except Exception:  # an observer (metrics) must never stop policy loading
                    log.exception("policy on_reload callback failed")
            return changed

    def _read_consistently(self, before: tuple) -> tuple[LoadResult, tuple] | None:
        """Load the folder, and the fingerprint it had, if it held still while being read.

        A swap between reading two files would give a mix of two revisions (a ConfigMap
        update flips `..data` under the file symlinks): the fingerprint is taken again after
        reading, and the read is repeated when it moved.
        """
        for _ in range(CONSISTENT_READ_ATTEMPTS):
            try:
                result = load_policy_dir(self.folder)
            except OSError as exc:
                # A file removed under us mid-swap, or one we may not read: the latter
                # holds still and is reported like any other broken folder.
                error = PolicyError(str(self.folder), -1, "", f"unreadable: {exc}",
                                    unreadable=True)
                result = LoadResult(None, (error,), "")
            after = self.fingerprint()
            if after == before:
                return result, after
            before = after
        return None

    def watch(self) -> None:
        """Poll in a daemon thread (one per worker process)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="policy-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.reload_if_changed()
            except Exception:  # the watcher must outlive any bad folder state
                log.exception("policy reload failed")
