"""A review's time budget: kube-apiserver's `?timeout=` minus a margin, held cooperatively.

A Python thread cannot be killed, so what stops the work is the work itself: the loops whose
length grows with a pod (caps walk, merges, checks) call `check()`, which raises OutOfTime
once this thread's deadline has passed. The review is then answered with a denial that says
so, inside the API server's timeout, and nothing more is computed for it. The caps (see
webhook.caps) keep every loop short, so a check is never far away.

OutOfTime is a BaseException, like KeyboardInterrupt: the fail-closed `except Exception`
around each check (which turns a bug into a denial naming that check) must not swallow it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# kube-apiserver's default timeoutSeconds, for a caller that sends no `?timeout=`.
DEFAULT_TIMEOUT_SECONDS = 10.0
MIN_MARGIN_SECONDS = 0.5
MARGIN_FRACTION = 0.2  # of the API server's timeout, for queueing, the answer and the network

# Refusals no real caller gets (a pod over the caps, which sit far above any Airflow pod; a
# review past 3 MiB; a large review while the worker is busy with another; a call without
# the client certificate) are answered this long after the request arrived. An oversized
# create then holds its seat of kube-apiserver's API Priority and Fairness level that long,
# and a caller without a certificate its connection, so what an attacker makes kube-apiserver
# decode, and the TLS handshakes it makes us do, per second fall with it (docs/benchmarks.md,
# "Adversarial load"). serving/review_endpoints.py holds them; `serve --hold-refusals` sets it.
HOLD_REFUSALS_SECONDS = 0.7

_local = threading.local()


class OutOfTime(BaseException):
    """This thread's review ran past its budget."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"out of time after {budget:g}s")
        self.budget = budget


def budget_for(timeout: float | None) -> float:
    """Seconds a review may take when kube-apiserver waits `timeout` seconds for it."""
    wait = DEFAULT_TIMEOUT_SECONDS if timeout is None or timeout <= 0 else timeout
    return max(wait - max(MIN_MARGIN_SECONDS, wait * MARGIN_FRACTION), wait / 2)


@contextmanager
def deadline(seconds: float, clock: Callable[[], float] = time.monotonic,
             started: float | None = None) -> Iterator[None]:
    """Within the block, `check()` on this thread raises OutOfTime once `seconds` have passed
    since `started` (a `clock()` reading; now by default). Blocks nest: the inner one holds."""
    previous = getattr(_local, "state", None)
    _local.state = ((clock() if started is None else started) + seconds, seconds, clock)
    try:
        yield
    finally:
        _local.state = previous


def check() -> None:
    """Raise OutOfTime when this thread's review is past its deadline (no deadline: never)."""
    state = getattr(_local, "state", None)
    if state is not None and state[2]() > state[0]:
        raise OutOfTime(state[1])


def remaining() -> float | None:
    """Seconds left to this thread's deadline, or None without one."""
    state = getattr(_local, "state", None)
    return None if state is None else state[0] - state[2]()
