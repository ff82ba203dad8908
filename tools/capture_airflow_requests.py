"""Re-capture the writes real Airflow sends to live pods into tests/fixtures/airflow-requests/.

Starts etcd + kube-apiserver (envtest, from KUBEBUILDER_ASSETS) with the webhook registered as
the e2e suite registers it, creates namespace `airflow` with the official Helm chart's
pod-launcher Role/RoleBinding for ServiceAccounts airflow-scheduler and airflow-worker, and runs,
for each supported Airflow (tools/airflow_venv.py builds the venvs), the snippets of
tests/e2e/airflow_snippets/ as those ServiceAccounts (TokenRequest tokens): the
KubernetesExecutor launches pods as scheduler job 1, then a scheduler of job 2 adopts, marks
done, deletes and revokes them; the KubernetesPodOperator launches pods and cleans them up.

    KUBEBUILDER_ASSETS=../shared/k8s/bin .venv/bin/python tools/capture_airflow_requests.py [V...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import E2EEnvironment  # noqa: E402
from tests.e2e.real_airflow import (  # noqa: E402
    VERSIONS,
    RealAirflow,
    airflow_writes,
    fixture_documents,
    grant_pod_launcher,
    summary,
    write_fixtures,
)

NAMESPACE = "airflow"  # the bundled Settings trust release `airflow` in namespace `airflow`


def main(argv: list[str]) -> int:
    versions = argv or list(VERSIONS)
    with tempfile.TemporaryDirectory(prefix="capture-airflow-") as tmp:
        workdir = Path(tmp)
        env = E2EEnvironment("envtest", workdir / "e2e")
        env.start()
        try:
            env.ensure_namespace(NAMESPACE)
            grant_pod_launcher(env.api_client(), NAMESPACE)
            for version in versions:
                airflow = RealAirflow(version, workdir)
                # One namespace per version would change the paths; the pods' names differ
                # per version instead (the launch snippets use fixed task ids, so delete first).
                captured = airflow_writes(airflow, env.kubeconfig, env.api_client(), NAMESPACE,
                                          workdir / f"capture-{version}")
                for path in write_fixtures(captured):
                    print(path.relative_to(ROOT))
                print(f"Airflow {version}:")
                for line in summary(fixture_documents(captured).values()):
                    print("  " + line)
                cleanup(env, NAMESPACE)
        finally:
            env.stop()
    return 0


def cleanup(env: E2EEnvironment, namespace: str) -> None:
    """Delete the pods one version left, so the next version's fixed names are free."""
    core = env.core()
    for pod in core.list_namespaced_pod(namespace).items:
        env.delete_pod(namespace, pod.metadata.name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
