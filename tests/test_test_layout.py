"""The tests' own layout (docs/testing.md, "Where a test goes"): a new test has one obvious
home, and moving a test never breaks another test module.

- Every `tests/test_<name>.py` names a module under webhook/: `<name>` is the module's path
  below webhook/ with `/` as `_` and without `.py` (a package by its folder), or the end of that
  path at a `_` between parts: webhook/policy/store.py is tested in test_store.py or
  test_policy_store.py, webhook/audit/ in test_audit.py. Or the file is one of the STORIES
  below: a user's story across many modules, or something outside webhook/.
- No module under tests/ (nor bench/ or tools/, which borrow the tests' helpers) imports a
  conftest or a test module: shared helpers live in tests/support/ (tests/e2e/ keeps its own
  non-test helpers beside its tests), shared fixtures in a conftest.py, which holds fixtures,
  pytest hooks and their private state only.
- The bundled policies are loaded once a session: the `bundled` fixture (or
  `tests.support.policies.bundled_policies()` outside a fixture), never again per module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support.paths import ROOT

TESTS = ROOT / "tests"
WEBHOOK = ROOT / "webhook"

# Story suites: what they tell cuts across modules, or is not under webhook/ at all. A story is
# never named after a module (then it would belong to that module's file).
STORIES = {
    "test_abuse.py": "DAG authors' breakout annotations against the real server",
    "test_airflow_requests.py": "Airflow's captured writes put to every hook",
    "test_audit_deploy.py": "deploy/components/audit rendered with kustomize",
    "test_bench_smoke.py": "bench/ runs and prints its tables",
    "test_bundled_policies.py": "policies/ agree with themselves on real Airflow pods",
    "test_cert_rotation.py": "serving certs rotated under the real server under load",
    "test_dependency_split.py": "what `pip install` without [server] can import",
    "test_dockerfile.py": "the Dockerfile, linted statically",
    "test_envelope_attacks.py": "a DAG author's breakout attempts against the Envelope",
    "test_envelope_bundled.py": "the bundled Envelope on real Airflow pods",
    "test_envelope_properties.py": "hypothesis: the bundled Envelope's bounds on generated pods",
    "test_envtest_assets.py": "tools/with_envtest_assets.py",
    "test_fixture_copies.py": "tests/fixtures copies equal ../shared's originals",
    "test_fuzz_server.py": "10,000 hostile reviews against the real server",
    "test_helm_chart.py": "deploy/helm as an admin meets it",
    "test_layers.py": "webhook/'s imports point down the layers, without a cycle",
    "test_deploy_manifests.py": "deploy/ renders, validates, and matches what the server serves",
    "test_mutate_properties.py": "hypothesis: the mutating hook's promises on generated pods",
    "test_official_chart_pods.py": "the official Airflow chart's pods under the bundled policies",
    "test_release_artifacts.py": "`make dist`: wheel, sdist and chart of one version",
    "test_pod_identity_properties.py": "hypothesis: no annotation changes which task a pod runs",
    "test_reload_under_load.py": "policy folder swapped 100 times while reviews stream in",
    "test_shutdown.py": "SIGTERM to the real server while reviews stream in",
    "test_test_layout.py": "this file: the tests' own layout",
    "test_worker_loss.py": "kill -9 a gunicorn worker while reviews stream in",
}

# Files being renamed or reshaped by work in flight (each with its owner). An entry whose file
# is gone, or now names a module, fails test_pending_entries_are_still_pending.
PENDING_NAMES: set[str] = set()
# (importing file, imported test module) pairs still to untangle, owner named.
PENDING_IMPORTS: set[tuple[str, str]] = set()
# Test modules that still load policies/ themselves at import time, owner named.
PENDING_BUNDLED_LOADS: set[str] = set()


def module_names() -> set[str]:
    """Every name a test file may carry: each module's path below webhook/ as parts joined by
    `_`, and each tail of that at a part boundary."""
    names = set()
    for path in WEBHOOK.rglob("*.py"):
        parts = path.relative_to(WEBHOOK).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names |= {"_".join(parts[i:]) for i in range(len(parts))}
    names.discard("")
    return names


def top_level_test_files() -> list[Path]:
    return sorted(TESTS.glob("test_*.py"))


def test_every_test_file_names_a_module_or_is_a_story() -> None:
    modules = module_names()
    homeless = [f.name for f in top_level_test_files()
                if f.stem.removeprefix("test_") not in modules
                and f.name not in STORIES and f.name not in PENDING_NAMES]
    assert homeless == [], (
        "name each after the module it tests (test_<module path with _>.py), or list it in "
        "STORIES with what story it tells")


def test_stories_are_listed_once_and_exist_and_name_no_module() -> None:
    modules = module_names()
    present = {f.name for f in top_level_test_files()}
    assert sorted(set(STORIES) - present) == []
    assert sorted(n for n in STORIES if n.removeprefix("test_")[:-3] in modules) == []


def test_pending_entries_are_still_pending() -> None:
    modules = module_names()
    present = {f.name for f in top_level_test_files()}
    assert sorted(PENDING_NAMES - present) == [], "renamed: drop from PENDING_NAMES"
    assert sorted(n for n in PENDING_NAMES if n.removeprefix("test_")[:-3] in modules) == []


def is_test_module(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a file of `package` imports, anywhere in it (function bodies too), as
    dotted names; `from package import name` counts `package.name` too, since `name` may be a
    module."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[:len(parts) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parent.parts)


def python_files() -> list[Path]:
    fixtures = TESTS / "fixtures"
    files = [p for p in TESTS.rglob("*.py") if fixtures not in p.parents]
    return sorted([*files, *(ROOT / "bench").rglob("*.py"), *(ROOT / "tools").rglob("*.py")])


def test_nothing_imports_a_test_module_or_a_conftest() -> None:
    offending = sorted(
        (str(path.relative_to(ROOT)), module)
        for path in python_files()
        for module in imported_modules(path.read_text(), package_of(path))
        if module.startswith("tests.") and is_test_module(module))
    pending = sorted(PENDING_IMPORTS)
    assert [o for o in offending if o not in PENDING_IMPORTS] == [], (
        "move what is shared to tests/support/ (helpers) or a conftest.py (fixtures)")
    assert [p for p in pending if p not in offending] == [], "untangled: drop from PENDING_IMPORTS"


@pytest.mark.parametrize(("source", "expected"), [
    ("from tests.conftest import x\n", {"tests.conftest", "tests.conftest.x"}),
    ("from .conftest import x\n", {"tests.conftest", "tests.conftest.x"}),
    ("from . import test_a\n", {"tests", "tests.test_a"}),
    ("def f():\n    from tests.e2e import test_b\n", {"tests.e2e", "tests.e2e.test_b"}),
    ("import tests.test_c\n", {"tests.test_c"}),
])
def test_imports_are_found_however_written(source: str, expected: set[str]) -> None:
    """The import check itself: relative, nested and `from package import module` forms."""
    assert imported_modules(source, "tests") == expected
    assert any(is_test_module(m) for m in expected)


BUNDLED_LOAD = re.compile(r"load_policy_dir\(\s*(POLICIES|\"policies\"|'policies'|ROOT\s*/)")


def test_the_bundled_policies_are_loaded_once_a_session() -> None:
    loading = sorted(str(p.relative_to(ROOT)) for p in python_files()
                     if p.is_relative_to(TESTS) and BUNDLED_LOAD.search(p.read_text()))
    assert [p for p in loading if p not in PENDING_BUNDLED_LOADS] == ["tests/support/policies.py"]


def fixture_or_hook(node: ast.stmt) -> bool:
    """A conftest's own definitions: fixtures, pytest hooks, and private state for them."""
    if isinstance(node, ast.FunctionDef):
        return node.name.startswith("pytest_") or any(
            "fixture" in ast.unparse(d) for d in node.decorator_list)
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(isinstance(t, ast.Name) and t.id.startswith("_") for t in targets)
    return not isinstance(node, ast.ClassDef | ast.AsyncFunctionDef)


def test_conftests_hold_fixtures_only() -> None:
    shared = sorted(f"{path.relative_to(ROOT)}:{node.lineno}"
                    for path in TESTS.rglob("conftest.py")
                    for node in ast.parse(path.read_text()).body if not fixture_or_hook(node))
    assert shared == [], "a helper that is not a fixture goes to tests/support/"
