"""The tree's arrows point down: no import cycle, and no module imports from a layer above its
own (shared/design/layout.md). The import graph is read from the source with `ast`, imports
inside functions and under TYPE_CHECKING included: a lazy import is still an arrow.

A new module gets a row in LAYERS (the test fails for a module with none); a new arrow that
points up is a design question, not a line for the allowlist.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "webhook"

# Bottom-up, as layout.md draws it. A module imports only from its own component or from a
# layer below; two components of one layer never import each other. A component is a list
# of module prefixes (a package or a module).
LAYERS: list[dict[str, tuple[str, ...]]] = [
    {"pod": ("webhook.pod",),  # what every layer reads about a pod
     "budget": ("webhook.budget",)},  # the time budget of one review
    {"kube": ("webhook.kube",)},  # facts about Kubernetes: Pod schema, quantities, limits
    {"identity": ("webhook.airflow_pods", "webhook.airflow_accounts",
                  "webhook.hook_selection")},  # which pods are Airflow's, who wrote them
    {"rules": ("webhook.rules",),  # the one rule table
     "violations": ("webhook.violations",)},  # what a check reports
    {"policy": ("webhook.policy",)},
    {"envelope": ("webhook.envelope",)},  # the admin's bounds, read by both hooks
    {"mutation": ("webhook.mutation",)},
    {"validation": ("webhook.validation",),
     "caps": ("webhook.caps",)},
    {"decide": ("webhook.decide",)},  # one decision, for every caller below
    {"request edge": ("webhook.admission", "webhook.review")},
    {"cluster": ("webhook.cluster",)},  # certs, registration rendering
    {"serving": ("webhook.serving",),
     "audit": ("webhook.audit",),
     "policy tests": ("webhook.policy_tests",),
     "airflow policy": ("webhook.airflow_policy",),
     "dag annotations": ("webhook.dag_annotations",)},
    {"cli": ("webhook.cli", "webhook.__main__")},
]

# Modules that must never load the server (layout.md's rules of thumb): the DAG author's
# helper and the Airflow cluster policy run inside Airflow, the offline commands in CI.
NEVER_SERVING = ("webhook.dag_annotations", "webhook.airflow_policy", "webhook.cli")
SERVING = "webhook.serving"
# The one command that starts the server (a module of webhook/cli/ once it is a package).
SERVE_COMMANDS = ("webhook.cli.serve",)

# Arrows allowed to point up while a move is under way, each with who removes it. An entry
# whose arrow no longer exists fails the test, so the list cannot outlive its reason.
ALLOWED: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module an imported name lives in (`webhook.pod.lists.CONTAINER_LISTS` is in
    `webhook.pod.lists`), or None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name) if name.split(".")[0] == PACKAGE else None
            if target and target != module:
                yield target


def import_graph() -> dict[str, set[str]]:
    return {module: set(_imports(module, path)) for module, path in MODULES.items()}


GRAPH = import_graph()


def _place(module: str) -> tuple[int, str] | None:
    """(layer index, component) of a module: its longest matching prefix wins."""
    best: tuple[int, int, str] | None = None
    for index, layer in enumerate(LAYERS):
        for component, prefixes in layer.items():
            for prefix in prefixes:
                if (module == prefix or module.startswith(prefix + ".")) and \
                        (best is None or len(prefix) > best[0]):
                    best = (len(prefix), index, component)
    return None if best is None else (best[1], best[2])


def _allowed_out(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without the allowlisted arrows."""
    return {source: {t for t in targets if (source, t) not in ALLOWED}
            for source, targets in graph.items()}


def wrong_arrows(graph: dict[str, set[str]]) -> list[str]:
    """Every arrow that points to a higher layer, or sideways to another component."""
    wrong = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            (above, mine), (below, theirs) = _place(source), _place(target)
            if below > above or (below == above and mine != theirs):
                wrong.append(f"{source} ({mine}) imports {target} ({theirs})")
    return wrong


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The import chain from `start` to a module under `goal`, not through a serve command."""
    seen = {start}
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        if path[-1] in SERVE_COMMANDS and path[-1] != start:
            continue
        for target in sorted(graph.get(path[-1], ())):
            if target == goal or target.startswith(goal + "."):
                return [*path, target]
            if target not in seen:
                seen.add(target)
                paths.append([*path, target])
    return None


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if m != PACKAGE and _place(m) is None]
    assert unplaced == []


def test_the_package_root_imports_nothing_of_its_own() -> None:
    assert GRAPH[PACKAGE] == set()


def test_no_import_points_up_or_sideways() -> None:
    assert wrong_arrows(_allowed_out(GRAPH)) == []


def test_no_import_cycle() -> None:
    assert cycles(_allowed_out(GRAPH)) == []


def test_the_checks_catch_what_they_forbid() -> None:
    # The arrows issue 24 found, on a made-up graph: each check names them.
    graph = {"webhook.policy.names": {"webhook.validation.validate"},
             "webhook.validation.validate": {"webhook.policy.names", "webhook.admission"},
             "webhook.mutation.mutate": {"webhook.cluster.registration"},
             "webhook.caps": {"webhook.validation.violations"},
             "webhook.dag_annotations": {"webhook.audit.judge"},
             "webhook.audit.judge": {"webhook.serving.metrics"}}
    assert wrong_arrows(graph) == [
        "webhook.audit.judge (audit) imports webhook.serving.metrics (serving)",
        "webhook.caps (caps) imports webhook.validation.violations (validation)",
        "webhook.dag_annotations (dag annotations) imports webhook.audit.judge (audit)",
        "webhook.mutation.mutate (mutation) imports webhook.cluster.registration (cluster)",
        "webhook.policy.names (policy) imports webhook.validation.validate (validation)",
        "webhook.validation.validate (validation) imports webhook.admission (request edge)"]
    assert cycles(graph) == [["webhook.policy.names", "webhook.validation.validate"]]
    assert reaches(graph, "webhook.dag_annotations", SERVING) == [
        "webhook.dag_annotations", "webhook.audit.judge", "webhook.serving.metrics"]
    # Only through the serve command may the CLI reach the server.
    assert reaches({"webhook.cli": {"webhook.cli.serve"},
                    "webhook.cli.serve": {"webhook.serving.server"}},
                   "webhook.cli", SERVING) is None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if any(
    m == p or m.startswith(p + ".") for p in NEVER_SERVING) and m not in SERVE_COMMANDS))
def test_airflow_side_code_and_offline_commands_never_load_the_server(module: str) -> None:
    assert reaches(_allowed_out(GRAPH), module, SERVING) is None


def test_every_allowlisted_arrow_still_exists() -> None:
    # Once its helper removed an arrow, its entry goes too (the allowlist cannot rot).
    gone = [f"{source} -> {target} ({owner})" for (source, target), owner in ALLOWED.items()
            if target not in GRAPH.get(source, set())]
    assert gone == []


def test_the_graph_reads_lazy_relative_and_type_checking_imports(tmp_path: Path) -> None:
    # The reader itself: every way of importing is an arrow.
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import checks as c\n"
        "from .. import airflow_rules\n"
        "import webhook.pod.lists\n"
        "if TYPE_CHECKING:\n"
        "    from webhook.policy.model import PolicySet\n"
        "def later():\n"
        "    from webhook.serving import metrics\n"
        "import json, yaml\n")
    assert sorted(_imports("webhook.validation.podsecurity.probe", source)) == [
        "webhook.pod.lists", "webhook.policy.model", "webhook.serving.metrics",
        "webhook.validation.airflow_rules", "webhook.validation.podsecurity.checks"]
