"""Upstream testdata (when PSA_FIXTURES_DIR is set), and the loader itself on a generated tree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .fixtures import checks_for_level_and_version, get_fixtures, minimal_valid_pod
from .upstream import FixtureFile, check_fixture, find_fixture_files, fixture_params


@pytest.mark.parametrize("fixture", fixture_params())
def test_upstream_fixture(fixture: FixtureFile) -> None:
    check_fixture(fixture)


def _write_tree(root: Path, minors: list[int]) -> int:
    """Write our ported fixtures in upstream's testdata layout; return the file count."""
    count = 0
    for level in ("baseline", "restricted"):
        for minor in minors:
            base = root / level / f"v1.{minor}"
            files = {("pass", "base"): minimal_valid_pod(level, minor)}
            for check in checks_for_level_and_version(level, minor):
                passing, failing = get_fixtures(level, minor, check)
                files.update({("pass", f"{check.lower()}{i}"): p for i, p in enumerate(passing)})
                files.update({("fail", f"{check.lower()}{i}"): p for i, p in enumerate(failing)})
            for (expect, stem), pod in files.items():
                (base / expect).mkdir(parents=True, exist_ok=True)
                (base / expect / f"{stem}.yaml").write_text(yaml.safe_dump(pod))
                count += 1
    return count


def test_loader_reads_upstream_layout(tmp_path: Path) -> None:
    written = _write_tree(tmp_path, [0, 22, 35])
    (tmp_path / "baseline" / "README.md").write_text("not a fixture\n")
    files = find_fixture_files(tmp_path)
    assert len(files) == written
    assert {f.version for f in files} == {"v1.0", "v1.22", "v1.35"}
    for fixture in files:
        check_fixture(fixture)


def test_loader_catches_a_wrong_verdict(tmp_path: Path) -> None:
    _write_tree(tmp_path, [35])
    wrong = tmp_path / "restricted" / "v1.35" / "fail" / "base.yaml"
    wrong.write_text(yaml.safe_dump(minimal_valid_pod("restricted", 35)))
    fixture = next(f for f in find_fixture_files(tmp_path) if f.path == wrong)
    with pytest.raises(AssertionError, match="admitted"):
        check_fixture(fixture)


def test_unset_env_skips_with_one_line_reason() -> None:
    (param,) = fixture_params(root="")
    (mark,) = param.marks
    assert mark.name == "skip"
    assert "\n" not in mark.kwargs.get("reason", mark.args[0] if mark.args else "")


def test_empty_dir_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="holds no"):
        fixture_params(root=str(tmp_path))
