"""tools/with_envtest_assets.py: which envtest assets `make test` (and so CI) hands the e2e
suite, and that a copy without the run bit is made runnable elsewhere, never in place."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

TOOL = ROOT / "tools" / "with_envtest_assets.py"
SCRIPT = "#!/bin/sh\necho {name} ran\n"


def load_tool():
    spec = importlib.util.spec_from_file_location("with_envtest_assets", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def layout(tmp_path: Path, mode: int | None) -> Path:
    """<tmp>/repo and, unless mode is None, <tmp>/shared/k8s/bin with both binaries."""
    repo = tmp_path / "repo"
    repo.mkdir()
    if mode is not None:
        bin_dir = tmp_path / "shared" / "k8s" / "bin"
        bin_dir.mkdir(parents=True)
        for name in ("kube-apiserver", "etcd"):
            (bin_dir / name).write_text(SCRIPT.format(name=name))
            (bin_dir / name).chmod(mode)
        bin_dir.chmod(0o555)  # CI's copy of shared/ has no write bits
    return repo


def test_a_set_kubebuilder_assets_wins(tmp_path: Path) -> None:
    repo = layout(tmp_path, 0o555)
    assets, temporary, line = tool.choose_assets(repo, {"KUBEBUILDER_ASSETS": "/opt/envtest"})
    assert (assets, temporary) == (None, None)
    assert line == "e2e: KUBEBUILDER_ASSETS=/opt/envtest (as set)"


def test_runnable_shared_binaries_are_used_in_place(tmp_path: Path) -> None:
    repo = layout(tmp_path, 0o555)
    assets, temporary, _ = tool.choose_assets(repo, {})
    assert assets == (tmp_path / "shared" / "k8s" / "bin").resolve() and temporary is None


def test_binaries_without_the_run_bit_are_copied_and_made_runnable(tmp_path: Path) -> None:
    repo = layout(tmp_path, 0o444)
    shared = tmp_path / "shared" / "k8s" / "bin"
    assets, temporary, line = tool.choose_assets(repo, {})
    try:
        assert assets == temporary and assets is not None
        assert not assets.is_relative_to(tmp_path / "shared")
        for name in ("kube-apiserver", "etcd"):
            result = subprocess.run([str(assets / name)], capture_output=True, text=True,
                                    check=True)
            assert result.stdout == f"{name} ran\n"
            assert stat.S_IMODE((shared / name).stat().st_mode) == 0o444  # untouched
        assert "lack the run bit" in line
    finally:
        (tmp_path / "shared" / "k8s" / "bin").chmod(0o755)
        if temporary is not None:
            shutil.rmtree(temporary)


def test_no_shared_folder_sets_nothing(tmp_path: Path) -> None:
    assets, temporary, line = tool.choose_assets(layout(tmp_path, None), {})
    assert (assets, temporary) == (None, None)
    assert "e2e tests use kind if available, else skip" in line


def test_the_command_gets_the_assets_and_its_exit_code_passes_through(tmp_path: Path) -> None:
    repo = layout(tmp_path, 0o444)
    (repo / "tools").mkdir()
    (repo / "tools" / TOOL.name).write_text(TOOL.read_text())
    probe = ("import os, sys; a = os.environ['KUBEBUILDER_ASSETS']; print(a); "
             "sys.exit(3 if os.access(os.path.join(a, 'etcd'), os.X_OK) else 1)")
    env = {k: v for k, v in os.environ.items() if k != "KUBEBUILDER_ASSETS"}
    result = subprocess.run([sys.executable, str(repo / "tools" / TOOL.name), sys.executable,
                             "-c", probe], capture_output=True, text=True, env=env, check=False)
    (tmp_path / "shared" / "k8s" / "bin").chmod(0o755)
    assert result.returncode == 3, result.stderr
    used = Path(result.stdout.splitlines()[-1])
    assert not used.exists(), "the temporary copy must be removed afterwards"
