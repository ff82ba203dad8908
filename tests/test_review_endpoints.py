"""The review endpoints hand kube-apiserver its answer before they record the decision.

A WSGI server calls the answer's close() once the bytes are sent (PEP 3333): the metrics and
the decision log line are written then, so a pod create never waits on our bookkeeping.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time

import pytest

from tests.support.admission_reviews import SCHEDULER
from tests.support.admission_reviews import pod_review as review
from tests.support.paths import POLICIES
from tests.support.pods import airflow_pod
from tests.support.server_process import metric_value
from webhook.mutation.mutate import mutate_pod
from webhook.policy.store import PolicyStore
from webhook.serving.app import create_app
from webhook.serving.metrics import WebhookMetrics
from webhook.serving.review_endpoints import LARGE_BODY_BYTES, LargeReviewGate, RefusalHold

REQUESTS = "airflow_pod_webhook_admission_requests_total"


def call(app, path: str, body: dict) -> tuple[str, list[bytes]]:
    data = json.dumps(body).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "timeout=10s",
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(data)),
               "wsgi.input": io.BytesIO(data), "SERVER_NAME": "localhost",
               "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "https"}
    statuses: list[str] = []
    answer = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    return statuses[0], answer


@pytest.fixture
def app_and_metrics():
    store = PolicyStore(POLICIES)
    store.reload_if_changed()
    metrics = WebhookMetrics()
    return create_app(store, metrics), metrics


def counted(metrics: WebhookMetrics, hook: str) -> float:
    return metric_value(metrics.exposition()[0].decode(), REQUESTS, hook=hook)


@pytest.mark.parametrize("hook", ["mutate", "validate", "mutate-validate"])
def test_the_decision_is_recorded_once_after_the_answer_is_sent(
        app_and_metrics, hook: str, caplog: pytest.LogCaptureFixture) -> None:
    app, metrics = app_and_metrics
    caplog.set_level(logging.INFO, "airflow_pod_webhook.decisions")
    pod = airflow_pod("airflow3-executor")
    if hook == "validate":  # as kube-apiserver sends it: the pod our mutation produced
        store = PolicyStore(POLICIES)
        store.reload_if_changed()
        pod = mutate_pod(pod, store.current, "data-airflow", SCHEDULER).pod
    status, answer = call(app, f"/{hook}", review(pod, uid="u-1"))
    assert status == "200 OK"
    assert json.loads(b"".join(answer))["response"]["uid"] == "u-1"
    # answered, not yet recorded: that waits for the server to have sent the bytes
    assert counted(metrics, hook) == 0
    assert not [r for r in caplog.records if r.name == "airflow_pod_webhook.decisions"]
    answer.close()
    answer.close()  # a second close records nothing more
    assert counted(metrics, hook) == 1
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if r.name == "airflow_pod_webhook.decisions"]
    assert [(line["hook"], line["decision"]) for line in lines] == [(hook, "allow")]
    assert lines[0]["duration_ms"] > 0  # measured up to the answer, not the bookkeeping


def test_a_refused_request_is_recorded_after_its_answer_too(app_and_metrics) -> None:
    app, metrics = app_and_metrics
    status, answer = call(app, "/validate", {"kind": "NotAReview"})
    assert status == "400 Bad Request" and b"kind" in b"".join(answer)
    assert counted(metrics, "validate") == 0
    answer.close()
    text = metrics.exposition()[0].decode()
    assert metric_value(text, REQUESTS, hook="validate", decision="invalid",
                        outcome="rejected") == 1


def test_an_answer_dropped_unclosed_is_still_recorded(app_and_metrics) -> None:
    """A caller that never closes (werkzeug's test client) must not lose the count."""
    app, metrics = app_and_metrics
    status, answer = call(app, "/mutate", review(airflow_pod("airflow3-executor"), uid="u-2"))
    assert status == "200 OK"
    del answer
    assert counted(metrics, "mutate") == 1


def test_one_large_review_at_a_time_and_two_waiting_at_most() -> None:
    gate = LargeReviewGate(slots=1, waiting=2)
    assert gate.enter(0.0) is True
    assert gate.enter(0.0) is False  # waited 0 s for the slot
    results: list[bool] = []
    waiters = [threading.Thread(target=lambda: results.append(gate.enter(5.0)))
               for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    deadline = time.monotonic() + 5
    while gate._waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.enter(5.0) is False  # a third waiter is refused at once, not queued
    gate.leave()
    gate.leave()
    for waiter in waiters:
        waiter.join(5)
    assert results == [True, True]


def test_a_large_review_finding_no_slot_is_denied_not_left_to_time_out(
        app_and_metrics, caplog: pytest.LogCaptureFixture) -> None:
    app, _ = app_and_metrics
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"]["filler"] = "x" * LARGE_BODY_BYTES
    endpoints = app.wsgi_app
    assert endpoints.large_reviews.enter(0.0)  # another large review holds the only slot
    endpoints.large_reviews.max_waiting = 0
    status, answer = call(app, "/validate", review(pod, uid="big-1"))
    assert status == "200 OK"
    assert json.loads(b"".join(answer))["response"] == {
        "uid": "big-1", "allowed": False, "status": {
            "status": "Failure", "code": 503, "reason": "TooManyRequests",
            "message": "airflow-pod-webhook is busy with other reviews larger than 256 KiB: "
                       "pod not admitted, retry (webhook: large reviews)"},
        "auditAnnotations": {"review-uid": "big-1"}}
    endpoints.large_reviews.leave()
    status, answer = call(app, "/validate", review(pod, uid="big-2"))
    assert json.loads(b"".join(answer))["response"]["status"]["reason"] != "TooManyRequests"


def test_the_api_servers_timeout_sets_the_budget_and_running_out_is_a_denial(
        app_and_metrics, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    app, metrics = app_and_metrics
    caplog.set_level(logging.INFO, "airflow_pod_webhook.decisions")
    asked: list[float | None] = []

    def no_time_left(timeout: float | None) -> float:
        asked.append(timeout)
        return -1.0

    monkeypatch.setattr("webhook.serving.review_endpoints.budget_for", no_time_left)
    status, answer = call(app, "/mutate", review(airflow_pod("airflow3-executor"), uid="slow"))
    response = json.loads(b"".join(answer))["response"]
    answer.close()
    assert asked[0] == 10.0  # from ?timeout=10s
    assert status == "200 OK" and response["allowed"] is False
    assert response["status"]["reason"] == "Timeout" and response["status"]["code"] == 503
    [line] = [json.loads(r.getMessage()) for r in caplog.records
              if r.name == "airflow_pod_webhook.decisions"]
    assert (line["uid"], line["decision"], line["rules"]) == (
        "slow", "deny", ["webhook: time budget"])
    assert counted(metrics, "mutate") == 1


def over_the_caps_pod() -> dict:
    """A stock executor pod with more tolerations than the bundled caps allow (500)."""
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["tolerations"] = [{"key": f"k{i}", "operator": "Exists"} for i in range(1001)]
    return pod


def test_a_refusal_over_the_caps_is_held_and_a_real_pod_is_answered_at_once() -> None:
    store = PolicyStore(POLICIES)
    store.reload_if_changed()
    app = create_app(store, WebhookMetrics(), hold_refusals=0.5)
    started = time.monotonic()
    status, answer = call(app, "/mutate", review(over_the_caps_pod(), uid="huge"))
    held = time.monotonic() - started
    response = json.loads(b"".join(answer))["response"]
    assert (status, response["allowed"], response["status"]["code"]) == ("200 OK", False, 400)
    assert "(webhook: limits)" in response["status"]["message"]
    assert 0.5 <= held < 2.0
    started = time.monotonic()
    status, answer = call(app, "/mutate", review(airflow_pod("airflow3-executor"), uid="real"))
    assert json.loads(b"".join(answer))["response"]["allowed"] is True
    assert time.monotonic() - started < 0.5


def test_at_most_two_refusals_are_held_at_once_in_a_worker() -> None:
    hold = RefusalHold(0.6, threads=2)
    started = time.monotonic()
    held: list[float] = []

    def one() -> None:
        hold.hold(time.monotonic(), None)
        held.append(time.monotonic() - started)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # both holding by now
    one()  # the third is answered at once
    for thread in threads:
        thread.join(5)
    assert held[0] < 0.5 and all(t >= 0.6 for t in held[1:]) and len(held) == 3


def test_a_hold_ends_inside_the_api_servers_timeout() -> None:
    hold = RefusalHold(10.0)
    started = time.monotonic()
    hold.hold(started, 0.8)  # kube-apiserver waits 0.8 s: the margin leaves 0.3 s of hold
    assert 0.3 <= time.monotonic() - started < 0.6
    started = time.monotonic()
    RefusalHold(1.3).hold(started - 1.0, None)  # the review came 1 s ago: 0.3 s left to hold
    assert 0.3 <= time.monotonic() - started < 0.6
    started = time.monotonic()
    RefusalHold(0.0).hold(started, 10.0)  # 0 turns the hold off
    assert time.monotonic() - started < 0.1


def test_a_call_without_the_client_certificate_is_refused_after_the_hold() -> None:
    store = PolicyStore(POLICIES)
    store.reload_if_changed()
    metrics = WebhookMetrics()
    app = create_app(store, metrics, require_client_cert=True, hold_refusals=0.4)
    started = time.monotonic()
    status, answer = call(app, "/validate", review(airflow_pod("airflow3-executor"), uid="x"))
    assert status == "401 Unauthorized"
    assert json.loads(b"".join(answer)) == {
        "error": "a client certificate signed by the webhook's client CA is required"}
    assert 0.4 <= time.monotonic() - started < 2.0
    assert counted(metrics, "validate") == 0  # never counted as a decision


def large_review_while_the_slot_is_taken(hold_refusals: float, waiting: int | None = None
                                         ) -> tuple[str, float]:
    """(the refusal's reason, seconds to it) for a large review made while another large
    review holds the worker's only slot; `waiting`: how many may wait for it."""
    store = PolicyStore(POLICIES)
    store.reload_if_changed()
    app = create_app(store, WebhookMetrics(), hold_refusals=hold_refusals)
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"]["filler"] = "x" * LARGE_BODY_BYTES
    assert app.wsgi_app.large_reviews.enter(0.0)  # another large review holds the only slot
    if waiting is not None:
        app.wsgi_app.large_reviews.max_waiting = waiting
    started = time.monotonic()
    _status, answer = call(app, "/validate", review(pod, uid="queued"))  # ?timeout=10s
    seconds = time.monotonic() - started
    app.wsgi_app.large_reviews.leave()
    return json.loads(b"".join(answer))["response"]["status"]["reason"], seconds


def test_a_large_review_waits_half_a_second_for_a_slot_not_the_api_servers_timeout() -> None:
    reason, waited = large_review_while_the_slot_is_taken(hold_refusals=0.0)
    assert reason == "TooManyRequests"
    assert 0.5 <= waited < 1.5


def test_a_review_past_three_mebibytes_is_refused_after_the_hold_too() -> None:
    """kube-apiserver caps a create's body at 3 MiB, not the review it sends us: a pod of
    args full of `<`, which Go writes as `\\u003c`, makes a review six times its size. Its
    413 is a refusal no real caller gets, and answered at once it would hand the hostile
    create's priority-and-fairness seat straight back."""
    store = PolicyStore(POLICIES)
    store.reload_if_changed()
    app = create_app(store, WebhookMetrics(), hold_refusals=0.4)
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["containers"][0]["args"] = ["<" * (3 << 20)]
    started = time.monotonic()
    status, answer = call(app, "/validate", review(pod, uid="expanded"))
    held = time.monotonic() - started
    assert status == "413 Request Entity Too Large"
    assert json.loads(b"".join(answer)) == {
        "error": "request body is larger than 3145728 bytes"}
    assert 0.4 <= held < 2.0


def test_a_busy_refusal_is_held_like_a_refusal_over_the_caps() -> None:
    # refused at once (none may wait for the slot), answered after the hold
    reason, held = large_review_while_the_slot_is_taken(hold_refusals=0.4, waiting=0)
    assert reason == "TooManyRequests"
    assert 0.4 <= held < 1.5
