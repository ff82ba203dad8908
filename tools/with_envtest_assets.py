"""Run a command (the test suite) with envtest's assets, so the e2e tests meet a real API server.

When KUBEBUILDER_ASSETS is unset and `../shared/k8s/bin` (beside the repository) holds
kube-apiserver and etcd, KUBEBUILDER_ASSETS points there. A copy without the run bit (a
read-only checkout, an archive) is copied into a temporary folder and made executable there,
never changed in place; the folder is removed when the command ends. With neither, the
command runs as it is and the e2e tests skip with their reason.

    python tools/with_envtest_assets.py python -m pytest -q
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

BINARIES = ("kube-apiserver", "etcd")
SHARED_ASSETS = Path("..") / "shared" / "k8s" / "bin"  # relative to the repository root


def runnable(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) and (folder / name).is_file()
               for name in BINARIES)


def executable_copy(folder: Path) -> Path:
    """The binaries copied into a new temporary folder, with the run bit set there."""
    target = Path(tempfile.mkdtemp(prefix="envtest-assets-"))
    for name in BINARIES:
        shutil.copyfile(folder / name, target / name)
        (target / name).chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP)
    return target


def choose_assets(repo: Path, environ: dict[str, str]) -> tuple[Path | None, Path | None, str]:
    """(assets for KUBEBUILDER_ASSETS or None, a temporary copy to remove or None, a line
    saying what was chosen)."""
    if environ.get("KUBEBUILDER_ASSETS"):
        return None, None, f"e2e: KUBEBUILDER_ASSETS={environ['KUBEBUILDER_ASSETS']} (as set)"
    shared = (repo / SHARED_ASSETS).resolve()
    if not all((shared / name).is_file() for name in BINARIES):
        return None, None, (f"e2e: no {SHARED_ASSETS} and KUBEBUILDER_ASSETS unset: the e2e "
                            "tests use kind if available, else skip")
    if runnable(shared):
        return shared, None, f"e2e: KUBEBUILDER_ASSETS={shared}"
    copy = executable_copy(shared)
    return copy, copy, (f"e2e: KUBEBUILDER_ASSETS={copy} (a runnable copy of {shared}, whose "
                        "binaries lack the run bit)")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    repo = Path(__file__).resolve().parent.parent
    environ = dict(os.environ)
    assets, temporary, line = choose_assets(repo, environ)
    print(line, flush=True)
    if assets is not None:
        environ["KUBEBUILDER_ASSETS"] = str(assets)
    try:
        return subprocess.run(argv, env=environ, check=False).returncode
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
