"""Progress on stderr for long runs: a bar on a terminal, nothing when stderr is not one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

monotonic = time.monotonic  # module-level so a test can stand a clock in for it
DELAY = 2.0  # seconds before anything is shown: short runs stay quiet
INTERVAL = 0.1
WIDTH = 30


class Progress:
    def __init__(self, stream: TextIO, enabled: bool | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.clock = clock or monotonic
        self.start = self.clock()
        self.last = 0.0
        self.shown = False

    def update(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self.start < DELAY or now - self.last < INTERVAL:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        if total and total >= done:
            filled = int(WIDTH * done / total)
            bar = "#" * filled + "-" * (WIDTH - filled)
            text = f"[{bar}] {done}/{total} pods, {rate:,.0f} pods/s"
        else:
            text = f"{done} pods judged, {rate:,.0f} pods/s"
        self.stream.write("\r\033[K" + text)
        self.stream.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
