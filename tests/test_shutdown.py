"""Graceful shutdown: SIGTERM to the gunicorn master while reviews stream in.

Every request sent before the signal gets its full answer, including one whose body is still
being uploaded when the signal lands; the server then exits by itself, well within the grace
period. Requests sent after the signal may be refused (the listener closes at once); the
Deployment's preStop delay is what keeps new ones away meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from tests.support.admission_reviews import pod_review as review
from tests.support.paths import POLICIES
from tests.support.pods import airflow_pod
from tests.support.server_process import post, running_server

STREAMS = 3


def test_sigterm_answers_every_request_sent_before_it(tmp_path: Path) -> None:
    with running_server(tmp_path, POLICIES, workers=2) as server:
        server.wait_workers(2)
        results: list[tuple[float, str]] = []  # (time the request started, problem or "")
        lock = threading.Lock()
        stop = threading.Event()

        def client(index: int) -> None:
            conn, pod, n = server.connect(), airflow_pod("airflow3-executor"), 0
            while not stop.is_set():
                n += 1
                uid = f"s-{index}-{n}"
                started = time.monotonic()
                try:
                    status, body, _ = post(conn, "/mutate?timeout=10s", review(pod, uid=uid))
                    ok = status == 200 and body["response"]["uid"] == uid
                    problem = "" if ok else f"HTTP {status}"
                except Exception as exc:
                    problem = repr(exc)
                with lock:
                    results.append((started, problem))
                if problem:
                    conn.close()
                    try:
                        conn = server.connect(timeout=2)
                        conn.connect()
                    except OSError:  # the listener is gone: this client is done
                        return
                    time.sleep(0.01)

        # A review still uploading when the signal lands: headers and half the body now.
        data = json.dumps(review(airflow_pod("airflow3-executor"), uid="slow")).encode()
        slow = server.connect()
        slow.putrequest("POST", "/validate?timeout=10s")
        slow.putheader("Content-Type", "application/json")
        slow.putheader("Content-Length", str(len(data)))
        slow.endheaders(data[: len(data) // 2])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(STREAMS)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        time.sleep(0.5)
        slow.send(data[len(data) // 2:])
        response = slow.getresponse()
        slow_answer = json.loads(response.read())
        exit_code = server.process.wait(timeout=60)
        exited = time.monotonic() - signalled
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    before = [problem for started, problem in results if started < signalled]
    after = [problem for started, problem in results if started >= signalled]
    lost = [problem for problem in before if problem]
    print(f"\nSIGTERM: {len(before)} reviews sent before the signal, {len(lost)} without a full "
          f"answer; after it {sum(1 for p in after if not p)} answered and "
          f"{sum(1 for p in after if p)} refused; the upload in flight got HTTP "
          f"{response.status}; master exited {exit_code} after {exited:.1f}s")
    assert len(before) > 50
    assert not lost, lost[:10]
    assert response.status == 200 and slow_answer["response"]["uid"] == "slow"
    assert exit_code == 0 and exited < 25  # the graceful timeout
