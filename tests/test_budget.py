"""A review's time budget: the API server's timeout less a margin, held by the work itself."""

from __future__ import annotations

import threading

import pytest

from webhook import budget


@pytest.mark.parametrize(("timeout", "seconds"), [
    (None, 8.0),  # no ?timeout=: kube-apiserver's default of 10 s
    (10.0, 8.0), (5.0, 4.0), (30.0, 24.0), (2.0, 1.5), (1.0, 0.5), (0.0, 8.0)])
def test_the_budget_leaves_a_margin_of_the_api_servers_timeout(timeout, seconds) -> None:
    assert budget.budget_for(timeout) == seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_check_raises_only_once_the_deadline_has_passed() -> None:
    clock = FakeClock()
    with budget.deadline(4.0, clock=clock):
        clock.now = 104.0
        budget.check()
        assert budget.remaining() == 0.0
        clock.now = 104.001
        with pytest.raises(budget.OutOfTime, match="out of time after 4s"):
            budget.check()


def test_the_deadline_counts_from_when_the_request_arrived() -> None:
    clock = FakeClock()
    with budget.deadline(4.0, clock=clock, started=95.0), pytest.raises(budget.OutOfTime):
        budget.check()


def test_without_a_deadline_nothing_is_ever_out_of_time() -> None:
    budget.check()
    assert budget.remaining() is None


def test_a_deadline_belongs_to_its_thread_and_its_block() -> None:
    clock = FakeClock()
    seen: list[float | None] = []
    with budget.deadline(1.0, clock=clock):
        worker = threading.Thread(target=lambda: seen.append(budget.remaining()))
        worker.start()
        worker.join()
        with budget.deadline(0.5, clock=clock):
            assert budget.remaining() == 0.5
        assert budget.remaining() == 1.0
    assert seen == [None]
    assert budget.remaining() is None


def test_out_of_time_gets_past_a_fail_closed_except_exception() -> None:
    def guarded() -> str:
        try:
            budget.check()
        except Exception:
            return "swallowed"
        return "ran"

    with budget.deadline(0.0, started=-1.0), pytest.raises(budget.OutOfTime):
        guarded()
