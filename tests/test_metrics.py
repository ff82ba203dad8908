"""Metrics: what each request records, and that /metrics from any gunicorn worker covers all."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.admission_reviews import pod_review as review
from tests.support.paths import POLICIES, ROOT
from tests.support.pods import admitted_pod, airflow_pod
from tests.support.server_process import (
    ConfigMapFolder,
    RunningServer,
    metric_value,
    policy_files_of,
    post,
    running_server,
)
from webhook.cluster.certs import cert_not_after
from webhook.policy.store import PolicyStore
from webhook.serving.app import create_app
from webhook.serving.metrics import WebhookMetrics

REQUESTS = "airflow_pod_webhook_admission_requests_total"


@pytest.fixture
def app_and_metrics():
    store = PolicyStore(POLICIES)
    store.reload_if_changed()
    metrics = WebhookMetrics()
    return create_app(store, metrics).test_client(), metrics


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def test_each_review_is_counted_by_hook_decision_and_outcome(app_and_metrics) -> None:
    client, _ = app_and_metrics
    pod = airflow_pod("airflow3-executor")
    client.post("/mutate", json=review(pod, uid="a"))
    client.post("/validate", json=review(admitted_pod("airflow3-executor"), uid="b"))
    privileged = airflow_pod("airflow3-executor")
    privileged["spec"]["hostNetwork"] = True
    client.post("/validate", json=review(privileged, uid="c"))
    client.post("/mutate", json=review(pod, uid="d", operation="UPDATE"))
    client.post("/mutate", data=b"{nope", content_type="application/json")
    client.post("/validate", data=b"[" * 100_000, content_type="application/json")
    text = scrape(client)

    def count(**labels: str) -> float:
        return metric_value(text, REQUESTS, **labels)

    assert count(hook="mutate", decision="allow", outcome="answered") == 1
    assert count(hook="validate", decision="allow", outcome="answered") == 1
    assert count(hook="validate", decision="deny", outcome="answered") == 1
    assert count(hook="mutate", decision="skip", outcome="answered") == 1
    assert count(hook="mutate", decision="invalid", outcome="rejected") == 1
    assert count(hook="validate", decision="invalid", outcome="rejected") == 1
    assert metric_value(text, "airflow_pod_webhook_admission_duration_seconds_count",
                        hook="validate") == 3
    assert metric_value(text, "airflow_pod_webhook_patch_operations_count") == 1
    assert metric_value(text, "airflow_pod_webhook_patch_operations_sum") > 0
    assert 'le="0.00025"' in text  # buckets fine enough for sub-millisecond reviews


def test_a_deeply_nested_body_is_a_400_not_a_500(app_and_metrics) -> None:
    client, _ = app_and_metrics
    response = client.post("/mutate", data=b"[" * 100_000 + b"]" * 100_000,
                           content_type="application/json")
    assert response.status_code == 400
    assert "depth limit exceeded" in response.get_json()["error"]


def test_not_ready_and_late_answers_are_visible() -> None:
    metrics = WebhookMetrics()
    client = create_app(PolicyStore(Path("/nonexistent")), metrics).test_client()
    pod = airflow_pod("airflow3-executor")
    assert client.post("/mutate?timeout=1ns", json=review(pod)).status_code == 503
    text = scrape(client)
    assert metric_value(text, REQUESTS, decision="invalid", outcome="not_ready") == 1
    assert metric_value(text, "airflow_pod_webhook_admission_deadline_exceeded_total",
                        hook="mutate") == 1


def test_policy_metrics_follow_loads_and_failures() -> None:
    metrics = WebhookMetrics()
    metrics.policy_loaded(True, 0, "rev-a")
    metrics.policy_loaded(False, 3, "rev-a")
    metrics.policy_loaded(True, 0, "rev-b")
    text = metrics.exposition()[0].decode()
    assert metric_value(text, "airflow_pod_webhook_policy_reloads_total", result="success") == 2
    assert metric_value(text, "airflow_pod_webhook_policy_reloads_total", result="failure") == 1
    assert metric_value(text, "airflow_pod_webhook_policy_load_errors") == 0
    assert metric_value(text, "airflow_pod_webhook_policy_revision_info", revision="rev-b") == 1
    assert metric_value(text, "airflow_pod_webhook_policy_revision_info", revision="rev-a") == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    tmp = tmp_path_factory.mktemp("metrics")
    ConfigMapFolder(tmp / "policies").write(policy_files_of(POLICIES))
    with running_server(tmp, POLICIES, workers=2) as running:
        yield running


def test_metrics_add_up_across_gunicorn_workers(server: RunningServer) -> None:
    before = server.metric(REQUESTS)
    pod = airflow_pod("airflow3-executor")
    sent = 0
    for n in range(12):  # fresh connections spread over both workers
        conn = server.connect()
        for i in range(5):
            status, body, _ = post(conn, "/mutate", review(pod, uid=f"m-{n}-{i}"))
            assert status == 200 and body["response"]["allowed"] is True
            sent += 1
        conn.close()
    # Each request is counted just after its answer is sent: let the last one land.
    deadline = time.monotonic() + 10
    while server.metric(REQUESTS) - before < sent and time.monotonic() < deadline:
        time.sleep(0.02)
    scrapes = [server.metric(REQUESTS) - before for _ in range(8)]
    print(f"\nsent {sent} reviews over 12 connections; /metrics counts from 8 scrapes: {scrapes}")
    # every scrape, whichever worker answers it, sees every worker's count
    assert scrapes == [sent] * 8


def test_served_revision_and_cert_expiry_are_exposed(server: RunningServer) -> None:
    revision = json.loads(server.get("/readyz")[1])["revision"]
    assert server.metric("airflow_pod_webhook_policy_revision_info", revision=revision) == 1
    expiry = cert_not_after((server.cert_dir / "tls.crt").read_bytes()).timestamp()
    assert server.metric("airflow_pod_webhook_serving_cert_expiry_timestamp_seconds") == expiry


def test_a_broken_push_shows_on_metrics_and_readyz_then_recovers(server: RunningServer) -> None:
    mount = ConfigMapFolder(server.policies)
    mount.generation = 100  # continue the fixture's stamps
    good = policy_files_of(POLICIES)
    failures = server.metric("airflow_pod_webhook_policy_reloads_total", result="failure")
    mount.write({**good, "99-broken.yaml": b"kind: [unclosed\n"})

    def settle(predicate, what: str) -> None:
        deadline = time.monotonic() + 10
        while not predicate():
            assert time.monotonic() < deadline, f"never {what}:\n{server.log()[-3000:]}"
            time.sleep(0.05)

    settle(lambda: server.metric("airflow_pod_webhook_policy_reloads_total",
                                 result="failure") >= failures + 2, "both workers failed")
    assert server.metric("airflow_pod_webhook_policy_load_errors") >= 1
    status, body = server.get("/readyz")
    detail = json.loads(body)
    assert status == 200 and detail["status"] == "ready"  # the last good set still serves
    assert any("99-broken.yaml" in e and "YAML syntax error" in e for e in detail["errors"])
    assert detail["failed_revision"] and detail["failed_revision"] != detail["revision"]

    mount.write(good)
    settle(lambda: server.metric("airflow_pod_webhook_policy_load_errors") == 0, "recovered")
    assert json.loads(server.get("/readyz")[1])["errors"] == []


OVERHEAD = textwrap.dedent("""
    import os, sys, tempfile, timeit
    if sys.argv[1] == "multiprocess":
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
    from webhook.serving.metrics import WebhookMetrics
    metrics = WebhookMetrics()
    metrics.admission("mutate", "allow", "answered", 0.0004, 7)  # create the children
    n = 20000
    best = min(timeit.repeat(lambda: metrics.admission("mutate", "allow", "answered",
                                                        0.0004, 7), number=n, repeat=5))
    print(f"{best / n * 1e6:.2f}")
""")


def test_per_request_metrics_overhead_is_measured() -> None:
    """Speed is printed, not asserted: what recording one review costs, per mode."""
    figures = {}
    for mode in ("single-process", "multiprocess"):
        out = subprocess.run([sys.executable, "-c", OVERHEAD, mode], capture_output=True,
                             text=True, check=True, cwd=ROOT)
        figures[mode] = float(out.stdout.strip())
    print("\nmetrics per admission (counter + histogram + patch histogram): "
          + ", ".join(f"{mode} {us:.2f} µs" for mode, us in figures.items()))


SCRAPE_WITH_EMPTY_FILE = textwrap.dedent("""
    import os, sys
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from webhook.serving.metrics import WebhookMetrics
    metrics = WebhookMetrics()
    metrics.admission("validate", "deny", "answered", 0.0004, 0)
    # A worker killed between creating its file and sizing it leaves it empty for good.
    open(os.path.join(sys.argv[1], "counter_424242.db"), "wb").close()
    sys.stdout.write(metrics.exposition()[0].decode())
""")


def test_an_empty_file_of_a_killed_worker_does_not_break_the_scrape(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRAPE_WITH_EMPTY_FILE, str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert metric_value(out.stdout, "airflow_pod_webhook_admission_requests_total",
                        hook="validate", decision="deny", outcome="answered") == 1
