"""Compiling policy YAML as an admin writes it: one file in a folder, each error printed as
`airflow-pod-webhook policy lint` prints it (file, line, column, document, field)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from webhook.policy.load import load_policy_dir
from webhook.policy.model import PolicySet


@pytest.fixture
def compile_yaml(tmp_path: Path) -> Callable[[str], tuple[PolicySet | None, list[str]]]:
    """Write the YAML as p.yaml and load the folder: (the set or None, the errors printed)."""
    def run(text: str) -> tuple[PolicySet | None, list[str]]:
        (tmp_path / "p.yaml").write_text(textwrap.dedent(text))
        result = load_policy_dir(tmp_path)
        return result.policy_set, [str(e) for e in result.errors]
    return run


@pytest.fixture
def compiled(compile_yaml: Callable) -> Callable[[str], PolicySet]:
    """The set the YAML compiles to; the test fails with the errors if it does not."""
    def run(text: str) -> PolicySet:
        result, errors = compile_yaml(text)
        assert errors == []
        assert result is not None
        return result
    return run
