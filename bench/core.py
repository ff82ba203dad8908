"""Micro-benchmark of the pure core, in this process, with timeit: what one review costs
before HTTP, TLS and gunicorn add theirs. Prints figures; asserts nothing about time."""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from dataclasses import dataclass

from bench.reviews import NAMESPACE, admission_review
from webhook import review
from webhook.mutation.mutate import mutate_pod
from webhook.policy.model import PolicySet
from webhook.validation.validate import validate_pod

try:  # measured when installed: the candidate faster JSON library
    import orjson
except ImportError:  # pragma: no cover - optional
    orjson = None


@dataclass(frozen=True)
class CoreFigure:
    pod: str
    step: str
    microseconds: float


def best_of(fn: Callable[[], object], budget_seconds: float) -> float:
    """Seconds per call: the best of 5 repeats, each sized to fit `budget_seconds` in all."""
    timer = timeit.Timer(fn)
    number, elapsed = 1, timer.timeit(1)
    while elapsed < budget_seconds / 50:  # calibrate on ~2 % of the budget
        number *= 4
        elapsed = timer.timeit(number)
    number = max(1, int(budget_seconds / 5 / (elapsed / number)))
    return min(timer.repeat(repeat=5, number=number)) / number


def core_steps(pod: dict, username: str, policies: PolicySet
               ) -> list[tuple[str, Callable[[], object]]]:
    mutated = mutate_pod(pod, policies, NAMESPACE, username).pod
    mutate_body = json.dumps(admission_review(pod, "u-m", username)).encode()
    validate_body = json.dumps(admission_review(mutated, "u-v", username)).encode()
    mutate_review = json.loads(mutate_body)
    validate_review = json.loads(validate_body)
    _, mutate_answer, _ = review.answer(review.MUTATE, mutate_review, policies)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("json.loads(review)", lambda: json.loads(mutate_body)),
        ("mutate_pod", lambda: mutate_pod(pod, policies, NAMESPACE, username)),
        ("validate_pod", lambda: validate_pod(mutated, policies, NAMESPACE, username)),
        ("answer(mutate)", lambda: review.answer(review.MUTATE, mutate_review, policies)),
        ("answer(validate)", lambda: review.answer(review.VALIDATE, validate_review,
                                                   policies)),
        ("answer(mutate-validate)", lambda: review.answer(review.MUTATE_AND_VALIDATE,
                                                          mutate_review, policies)),
        ("json.dumps(answer)", lambda: json.dumps(mutate_answer, separators=(",", ":"))),
    ]
    if orjson is not None:
        steps += [("orjson.loads(review)", lambda: orjson.loads(mutate_body)),
                  ("orjson.dumps(answer)", lambda: orjson.dumps(mutate_answer))]
    return steps


def run_core(pods: list[tuple[str, dict, str]], policies: PolicySet,
             budget_seconds: float = 0.5) -> list[CoreFigure]:
    figures = []
    for name, pod, username in pods:
        for step, fn in core_steps(pod, username, policies):
            figures.append(CoreFigure(name, step, best_of(fn, budget_seconds) * 1e6))
    return figures
