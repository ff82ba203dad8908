"""Run upstream's generated fixture files (test/testdata) through evaluate_pod.

Point PSA_FIXTURES_DIR at a checkout of
staging/src/k8s.io/pod-security-admission/test/testdata, whose layout is
<level>/v1.<minor>/{pass,fail}/*.yaml, each file one serialized v1 Pod. Pass files must give
no violations at that level and version; fail files must give at least one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.validation.podsecurity import LEVELS, evaluate_pod

ENV = "PSA_FIXTURES_DIR"
SKIP_REASON = f"{ENV} is not set to an upstream pod-security-admission test/testdata checkout"
_VERSION_DIR = re.compile(r"^v1\.(0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class FixtureFile:
    level: str
    version: str  # "v1.<minor>"
    expect: str  # "pass" or "fail"
    path: Path

    @property
    def test_id(self) -> str:
        return f"{self.level}-{self.version}-{self.expect}-{self.path.stem}"


def find_fixture_files(root: Path) -> list[FixtureFile]:
    """Every <level>/v1.<minor>/{pass,fail}/*.yaml under root, in a stable order."""
    found = []
    for level in LEVELS:
        for version_dir in sorted((root / level).glob("v1.*")):
            if not _VERSION_DIR.match(version_dir.name):
                continue
            for expect in ("pass", "fail"):
                for path in sorted((version_dir / expect).glob("*.yaml")):
                    found.append(FixtureFile(level, version_dir.name, expect, path))
    return found


def load_pod(path: Path) -> dict[str, Any]:
    pod = yaml.safe_load(path.read_text())
    assert isinstance(pod, dict), f"{path} is not one YAML object"
    return pod


def check_fixture(fixture: FixtureFile) -> None:
    """Assert one upstream fixture file gets upstream's verdict from evaluate_pod."""
    found = evaluate_pod(load_pod(fixture.path), fixture.level, fixture.version)
    where = f"{fixture.level}:{fixture.version} {fixture.expect}/{fixture.path.name}"
    if fixture.expect == "pass":
        assert found == [], f"{where} refused: {[v.message for v in found]}"
    else:
        assert found, f"{where} admitted, but upstream refuses it"


def fixture_params(root: str | None = None) -> list[Any]:
    """pytest params, one per fixture file; a single skipped param when no checkout is given."""
    root = root if root is not None else os.environ.get(ENV)
    if not root:
        return [pytest.param(None, id="upstream-testdata", marks=pytest.mark.skip(SKIP_REASON))]
    files = find_fixture_files(Path(root))
    # A set but wrong path must fail loudly, not pass by finding nothing.
    assert files, f"{ENV}={root} holds no <level>/v1.<minor>/{{pass,fail}}/*.yaml files"
    return [pytest.param(f, id=f.test_id) for f in files]
