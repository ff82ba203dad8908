"""Benchmark of airflow-pod-webhook as kube-apiserver calls it (issue 7).

    python -m bench                 # the full run, about 3 minutes on 2 cores
    python -m bench --quick         # a seconds-long smoke run (figures mean nothing)
    python -m bench --help          # every option

It starts the real server (`airflow-pod-webhook serve`: gunicorn gthread, TLS with generated
certs, the bundled policies, loopback only) and a trivial ceiling app under the same settings,
drives them from separate load processes over kept-alive HTTP/1.1 TLS connections, and prints
Markdown tables: throughput, p50/p95/p99/max latency per hook at saturation and at a fixed
rate, 1 vs N TaskPolicy files, small vs big pods, RSS per worker, start-to-ready, the pure
core per call, and the single-call mode. docs/benchmarks.md explains the method and figures.
"""
