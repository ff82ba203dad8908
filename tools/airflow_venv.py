"""Build (once) a throwaway virtualenv with a real Apache Airflow and its cncf.kubernetes provider.

Tests that run real Airflow code (the scheduler's KubernetesExecutor, the KubernetesPodOperator,
DagBag with cluster policies) call `airflow_venv(version)`; the venv is cached under
AIRFLOW_VENV_DIR (default `.cache/airflow-venvs/` in the repo, git-ignored), so CI pays the
install once per run and a developer once per machine. Our own package is not installed there:
callers put the repo on PYTHONPATH, so the venv holds exactly what Airflow's users have.

    python tools/airflow_venv.py 2.10.5 3.3.2     # build both, print their pythons
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

# The Airflow versions the project supports, with the provider release each was tested with.
PROVIDERS = {
    "2.10.5": "10.1.0",
    "3.3.2": "10.25.0",
}
ROOT = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT = 900.0


def venv_root() -> Path:
    return Path(os.environ.get("AIRFLOW_VENV_DIR") or ROOT / ".cache" / "airflow-venvs")


def airflow_venv(version: str) -> Path:
    """The python of a venv holding apache-airflow==version; built on first use."""
    provider = PROVIDERS[version]
    home = venv_root() / version
    python = home / "bin" / "python"
    marker = home / ".complete"
    if marker.exists():
        return python
    home.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"apache-airflow=={version}",
         f"apache-airflow-providers-cncf-kubernetes=={provider}"],
        check=True, timeout=INSTALL_TIMEOUT,
    )
    marker.write_text(f"apache-airflow=={version} cncf-kubernetes=={provider}\n")
    return python


def main(argv: list[str]) -> int:
    for version in argv or sorted(PROVIDERS):
        print(airflow_venv(version))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
