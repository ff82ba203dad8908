"""The three review endpoints as a plain WSGI layer in front of Flask.

kube-apiserver's calls are the hot path: every Airflow task launch waits on them. Flask's
request context, routing and response objects cost more than the policy decision itself, so
`/mutate`, `/validate` and `/mutate-validate` are answered here from the WSGI environ, and
everything else (health, readiness, metrics, 404s) goes on to the Flask app.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import orjson

from webhook.admission import (
    MAX_BODY_BYTES,
    NESTED_TOO_DEEPLY,
    SUPPORTED_VERSIONS,
    BodyError,
    decode_body,
    deny,
)
from webhook.budget import HOLD_REFUSALS_SECONDS, budget_for
from webhook.caps import CAP_RULE
from webhook.policy.model import DEFAULT_ANNOTATION_PREFIX
from webhook.policy.store import PolicyStore
from webhook.review import (
    MUTATE,
    MUTATE_AND_VALIDATE,
    REFUSE,
    VALIDATE,
    Decision,
    answer_within,
    bad_review,
    error_body,
    last_resort,
    traced,
)
from webhook.rules import known
from webhook.serving import metrics as m
from webhook.serving.decision_log import log_decision, log_unauthenticated

HOOK_PATHS = {"/mutate": MUTATE, "/validate": VALIDATE, "/mutate-validate": MUTATE_AND_VALIDATE,
              "/refuse": REFUSE}
log = logging.getLogger("airflow_pod_webhook.http")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
WSGIApp = Callable[[dict, Callable], Iterable[bytes]]



def parse_timeout(text: str | None) -> float | None:
    """kube-apiserver's `?timeout=` is a Go duration such as `10s` or `1m30s`."""
    if not text:
        return None
    total, rest = 0.0, text
    while rest:
        match = _DURATION_PART.match(rest)
        if not match:
            raise ValueError(f"timeout {text!r} is not a duration such as 10s")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        rest = rest[match.end():]
    return total


def read_body(stream: Any, length: int | None) -> bytes | None:
    """The body, or None past the cap; an oversized body is drained (within bounds) so the
    client reads our 413 instead of a reset connection."""
    if length is not None and length > MAX_BODY_BYTES:
        _drain(stream, min(length, 4 * MAX_BODY_BYTES))
        return None
    data = stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        _drain(stream, 3 * MAX_BODY_BYTES)
        return None
    return data


def _drain(stream: Any, limit: int) -> None:
    while limit > 0:
        chunk = stream.read(min(65536, limit))
        if not chunk:
            return
        limit -= len(chunk)


class ReviewEndpoints:
    """WSGI middleware: answers the review paths itself, passes every other path on."""

    def __init__(self, fallback: WSGIApp, store: PolicyStore, metrics: m.WebhookMetrics, *,
                 require_client_cert: bool = False,
                 hold_refusals: float = HOLD_REFUSALS_SECONDS) -> None:
        self.fallback = fallback
        self.store = store
        self.metrics = metrics
        self.require_client_cert = require_client_cert
        self.large_reviews = LargeReviewGate()
        self.over_caps = RefusalHold(hold_refusals)
        # Held apart, so a flood of callers without a certificate cannot take the holds of
        # oversized pods, nor the other way round.
        self.unauthenticated_calls = RefusalHold(hold_refusals)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        hook = HOOK_PATHS.get(environ.get("PATH_INFO", ""))
        if hook is None:
            return self.fallback(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            return _respond(start_response, 405, error_body("use POST"), [("Allow", "POST")])
        if self.require_client_cert and not client_verified(environ):
            self.unauthenticated_calls.hold(time.monotonic(), None)
            return self.unauthenticated(hook, environ, start_response)
        status, payload, bookkeeping = self.review(hook, environ)
        answer = _respond(start_response, status, payload)
        return AnswerThenRecord(answer, bookkeeping)

    def unauthenticated(self, hook: str, environ: dict, start_response: Callable
                        ) -> Iterable[bytes]:
        """A call without a verified client certificate: refused before its body is read or
        judged, logged as such, and counted apart from admission decisions."""
        self.metrics.unauthenticated_call(hook)
        log_unauthenticated(hook, environ.get("REMOTE_ADDR", ""))
        # The body is never read: our worker hands such a caller's request on without it
        # (serving/worker.py, `Connection: close`), so none of its bytes are held either.
        return _respond(start_response, 401, error_body(
            "a client certificate signed by the webhook's client CA is required"))

    def review(self, hook: str, environ: dict) -> tuple[int, dict, Callable[[], None]]:
        """(HTTP status, body, bookkeeping): call bookkeeping() once the answer is sent."""
        started = time.perf_counter()
        clock_started = time.monotonic()
        # The body is read (or drained) before any answer, even a refusal: gunicorn drains
        # at most 64 KiB of an unread body and then silently closes a kept-alive connection,
        # which the API server's next request on it would see as a failed call.
        data = read_body(environ["wsgi.input"], _content_length(environ))
        try:
            budget = parse_timeout(_query_value(environ, "timeout"))
        except ValueError as exc:
            budget = None
            status, payload, decision, outcome = rejected(hook, 400, str(exc))
        else:
            status, payload, decision, outcome = self.answer_request(
                hook, environ, data, budget_for(budget), clock_started)
        # A body past 3 MiB is no real caller's either: kube-apiserver caps the create, not
        # the review it makes of it (Go writes a `<` in a pod's strings as `\u003c`).
        if HELD_RULES.intersection(decision.rules) or (
                status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE):
            self.over_caps.hold(clock_started, budget)
        elapsed = time.perf_counter() - started

        def bookkeeping() -> None:
            if budget is not None and elapsed > budget:
                self.metrics.deadline_exceeded(hook)
                log.warning("%s answered after the API server's %.1fs timeout (%.3fs)",
                            hook, budget, elapsed)
            self.metrics.admission(hook, decision.decision, outcome, elapsed,
                                   decision.patch_ops)
            log_decision(decision, elapsed)

        return status, payload, bookkeeping

    def answer_request(self, hook: str, environ: dict, data: bytes | None,
                       seconds: float | None = None, started: float | None = None
                       ) -> tuple[int, dict, Decision, str]:
        """(HTTP status, body, decision, outcome) for one review request, answered within
        `seconds` of `started` (a time.monotonic() reading)."""
        mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if mimetype != "application/json":
            return rejected(hook, 415, "Content-Type must be application/json, got "
                            f"{mimetype or 'none'}")
        if data is not None and len(data) > LARGE_BODY_BYTES:
            # Decoding multiplies a body's size up to ~25 times (a 3 MiB list of `{}` is a
            # million dicts): one large review at a time per worker bounds its memory.
            left = (budget_for(None) if seconds is None else seconds) - (
                time.monotonic() - started if started is not None else 0.0)
            if not self.large_reviews.enter(min(left, LARGE_REVIEW_WAIT_SECONDS)):
                return busy(hook, data)
            try:
                return self.decode_and_answer(hook, data, seconds, started)
            finally:
                self.large_reviews.leave()
        return self.decode_and_answer(hook, data, seconds, started)

    def decode_and_answer(self, hook: str, data: bytes | None, seconds: float | None,
                          started: float | None) -> tuple[int, dict, Decision, str]:
        try:
            body: Any = decode_body(data)
        except BodyError as exc:
            return rejected(hook, exc.status, exc.message)
        try:
            status, payload, decision = answer_within(
                hook, body, self.store.current, budget_for(None) if seconds is None else seconds,
                started)
        except RecursionError:
            return (*bad_review(hook, body, NESTED_TOO_DEEPLY), m.REJECTED)
        except Exception:  # a bug of ours must not become a 500 the user cannot read
            log.exception("%s: unexpected error", hook)
            current = self.store.current
            prefix = (current.settings.annotation_prefix if current is not None
                      else DEFAULT_ANNOTATION_PREFIX)
            return (*last_resort(hook, body, prefix), m.ERROR)
        outcome = m.ANSWERED if status == 200 else m.NOT_READY if status == 503 else m.REJECTED
        return status, payload, decision, outcome


class AnswerThenRecord(list):
    """The answer's bytes, whose close() records the decision (metrics, the log line).

    A WSGI server calls close() once it has sent the answer (PEP 3333), so kube-apiserver,
    and the pod create waiting on it, never wait for our bookkeeping.
    """

    def __init__(self, answer: list[bytes], bookkeeping: Callable[[], None]) -> None:
        super().__init__(answer)
        self._bookkeeping: Callable[[], None] | None = bookkeeping

    def close(self) -> None:
        bookkeeping, self._bookkeeping = self._bookkeeping, None  # at most once
        if bookkeeping is not None:
            bookkeeping()

    def __del__(self) -> None:
        # A caller that drops the answer unclosed (werkzeug's test client) still records it.
        self.close()


LARGE_BODY_BYTES = 256 * 1024  # a real Airflow pod's review is 5-30 KiB
# At most this long in line for a slot: a flood of large reviews gets each refused within a
# second (the wait, the decode, or the hold), never at kube-apiserver's timeout.
LARGE_REVIEW_WAIT_SECONDS = 0.5
BUSY_RULE = known("webhook: large reviews")
HELD_RULES = frozenset({CAP_RULE, BUSY_RULE})  # the refusals held, by the rule they name
_UID_NEAR_START = re.compile(rb'"uid"\s*:\s*"([^"\\]{1,128})"')


class LargeReviewGate:
    """At most `slots` large reviews decoded at once in a worker, and at most `waiting`
    more threads waiting for a slot: the other threads stay free for the small reviews
    every real Airflow pod makes, whatever a flood of large ones does."""

    def __init__(self, slots: int = 1, waiting: int = 2) -> None:
        self._slots = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self.max_waiting = waiting

    def enter(self, timeout: float) -> bool:
        if self._slots.acquire(blocking=False):
            return True
        with self._lock:
            if self._waiting >= self.max_waiting:
                return False
            self._waiting += 1
        try:
            return self._slots.acquire(timeout=max(0.0, timeout))
        finally:
            with self._lock:
                self._waiting -= 1

    def leave(self) -> None:
        self._slots.release()


class RefusalHold:
    """Hold at most `threads` refusals at once in a worker, each until `seconds` after its
    review arrived (and a margin inside kube-apiserver's timeout); one more is answered at
    once, so holding never takes the threads the small reviews need."""

    MARGIN = 0.5  # seconds left of kube-apiserver's timeout, whatever the hold

    def __init__(self, seconds: float, threads: int = 2) -> None:
        self.seconds = max(0.0, seconds)
        self._threads = threading.BoundedSemaphore(threads)

    def hold(self, started: float, budget: float | None) -> None:
        until = started + self.seconds
        if budget is not None:
            until = min(until, started + budget - self.MARGIN)
        if until <= time.monotonic() or not self._threads.acquire(blocking=False):
            return
        try:
            time.sleep(max(0.0, until - time.monotonic()))
        finally:
            self._threads.release()


def busy(hook: str, data: bytes) -> tuple[int, dict, Decision, str]:
    """A large review that found no free slot in time: denied (never left to a fail-open
    timeout), addressed by the uid kube-apiserver writes near the start of the body."""
    message = (f"airflow-pod-webhook is busy with other reviews larger than "
               f"{LARGE_BODY_BYTES // 1024} KiB: pod not admitted, retry ({BUSY_RULE})")
    decision = Decision(hook, "deny", rules=(BUSY_RULE,), reason="busy")
    match = _UID_NEAR_START.search(data, 0, 4096)
    version = b'"admission.k8s.io/v1beta1"' in data[:4096]
    if match is None:
        return 503, error_body(message), decision, m.REJECTED
    uid = match.group(1).decode("utf-8", "replace")
    body = traced(deny(SUPPORTED_VERSIONS[1 if version else 0], uid, 503, message,
                       reason="TooManyRequests"))
    return 200, body, replace(decision, uid=uid), m.ANSWERED


def client_verified(environ: dict) -> bool:
    """Whether the caller presented a client certificate that verified against the client CA
    (gunicorn hands the TLS socket over in the environ; CERT_OPTIONAL verifies what it gets)."""
    sock = environ.get("gunicorn.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return False
    try:
        return bool(getpeercert())
    except (OSError, ValueError):
        return False


def rejected(hook: str, status: int, message: str) -> tuple[int, dict, Decision, str]:
    return status, error_body(message), Decision(hook, "invalid", reason=message), m.REJECTED


def json_bytes(body: dict) -> bytes:
    return orjson.dumps(body)


def _respond(start_response: Callable, status: int, body: dict,
             headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = json_bytes(body)
    start_response(_STATUS_LINES.get(status, f"{status} Unknown"), [
        ("Content-Type", "application/json"), ("Content-Length", str(len(data))),
        *(headers or [])])
    return [data]


def _content_length(environ: dict) -> int | None:
    try:
        return int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _query_value(environ: dict, key: str) -> str | None:
    query = environ.get("QUERY_STRING", "")
    if key not in query:  # the common fast path: no parsing when the key is absent
        return None
    values = parse_qs(query, keep_blank_values=True).get(key)
    return values[0] if values else None
