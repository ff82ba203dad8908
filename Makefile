# Two commands set up everything on a fresh machine (Python >= 3.10 with venv):
#   make serve   serve /mutate and /validate on https://localhost:8443 with the bundled
#                policies and a self-generated development CA (written to certs/)
#   make test    run the test suite (what CI runs, through .ci/run)
# Both install the package with its [server] extra (flask, gunicorn, ...); a plain
# `pip install airflow-pod-webhook` is the light DAG-author install (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8443

.PHONY: serve test lint bench mutation clean dist

$(BIN)/airflow-pod-webhook: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[server,test]"
	touch $@

# Development only: listens on 127.0.0.1 (HOST=0.0.0.0 to reach it from a kind cluster or
# another machine; it serves the development CA in certs/).
HOST   ?= 127.0.0.1
serve: $(BIN)/airflow-pod-webhook
	$(BIN)/airflow-pod-webhook serve --policies policies --cert-dir certs --host $(HOST) --port $(PORT)

# The e2e tests use ../shared/k8s/bin as envtest's assets when KUBEBUILDER_ASSETS is unset.
test: $(BIN)/airflow-pod-webhook
	$(BIN)/ruff check .
	$(BIN)/python tools/with_envtest_assets.py $(BIN)/python -m pytest -q

bench: $(BIN)/airflow-pod-webhook
	$(BIN)/python -m bench

# Mutation testing of the policy core (not in CI: tens of minutes); scores in docs/testing.md
mutation: $(BIN)/airflow-pod-webhook
	$(BIN)/pip install --quiet -e ".[test,mutation]"
	$(BIN)/python tools/mutation.py $(MODULES)

# Release artifacts in dist/: the wheel and sdist (pip install dist/airflow_pod_webhook-*.whl
# installs without an index) and the Helm chart archive, all of one version (pyproject.toml;
# tests/test_release_artifacts.py keeps the chart and image versions equal to it).
dist: $(BIN)/airflow-pod-webhook
	rm -rf dist
	$(BIN)/pip install --quiet build
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -c "import helm_python; print(helm_python.package('deploy/helm/airflow-pod-webhook', destination='dist'))"

clean:
	rm -rf $(VENV) dist build certs/*.crt certs/*.key .pytest_cache .hypothesis mutants
