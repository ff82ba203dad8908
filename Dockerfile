# syntax=docker/dockerfile:1
# airflow-pod-webhook: admission webhook for Airflow worker pods (HTTPS on 8443, non-root).
# Build: docker build -t airflow-pod-webhook:0.1.0 .
# Both stages use the same base so the venv's python symlink stays valid in the final stage.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: build the wheel and install it, with its dependencies, into /opt/venv -----------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the wheel needs (see .dockerignore): a change to tests or deploy/ does not rebuild.
COPY pyproject.toml README.md LICENSE ./
COPY webhook ./webhook
# Bytecode is compiled here (pip does it on install), because the final root fs is read-only.
# pip itself is removed afterwards: the runtime image never installs anything.
# [server]: the base package is the light DAG-author install; serving needs flask, gunicorn, ...
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install "$(echo /wheels/*.whl)[server]" \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
 && /opt/venv/bin/pip uninstall --yes pip

# --- final: runtime only, no compilers, no pip cache, no source tree ---------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="airflow-pod-webhook" \
      org.opencontainers.image.description="Kubernetes admission webhook for Apache Airflow worker pods" \
      org.opencontainers.image.licenses="Apache-2.0"

# Nothing may be written outside /tmp (an emptyDir in the Deployment): no .pyc; HOME, temp files
# and prometheus multiprocess files under /tmp. Gunicorn heartbeats go to /dev/shm (server.py),
# falling back to TMPDIR.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc

COPY --from=builder /opt/venv /opt/venv
# Built-in policies so the image runs on its own; the Deployment mounts the ConfigMap over them.
COPY policies/ /etc/airflow-pod-webhook/policies/
# The cert dir is a Secret mount in Kubernetes; owning it lets `docker run` create dev certs.
RUN mkdir -p /etc/airflow-pod-webhook/cluster/certs \
 && chown 65532:65532 /etc/airflow-pod-webhook/cluster/certs \
 && chmod 0700 /etc/airflow-pod-webhook/cluster/certs

# Numeric, so kubelet can check runAsNonRoot without an /etc/passwd entry.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["airflow-pod-webhook", "serve"]
CMD ["--policies", "/etc/airflow-pod-webhook/policies", "--cert-dir", "/etc/airflow-pod-webhook/cluster/certs", "--host", "0.0.0.0", "--port", "8443"]
