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

.PHONY: serve test lint bench mutation clean

$(BIN)/airflow-pod-webhook: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[server,test]"
	touch $@

serve: $(BIN)/airflow-pod-webhook
	$(BIN)/airflow-pod-webhook serve --policies policies --cert-dir certs --port $(PORT)

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

clean:
	rm -rf $(VENV) certs/*.crt certs/*.key .pytest_cache .hypothesis mutants
