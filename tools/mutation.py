"""Mutation testing of the policy core: one mutmut run per module, each against its own tests.

mutmut 3 has one global test selection, and changing it between runs resets every cached
result. So each module gets its own working directory, mutants/<module>/, holding links to
the repository's sources and a pyproject.toml that is this repository's [tool.mutmut] plus the
module's `only_mutate` and test selection from [tool.mutation.modules]. mutmut then builds
mutants/<module>/mutants/ as usual. Equivalent mutants, listed by name in
[tool.mutation.equivalent], are left out of the score.

    python tools/mutation.py                  every module, from scratch
    python tools/mutation.py webhook/mutation/merge.py one module
    python tools/mutation.py --resume ...     keep earlier results, rerun only survivors
    python tools/mutation.py --report         print the scores of the last runs, run nothing
    python tools/mutation.py --show MODULE    print the diff of every mutant not killed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "mutants"
LINKED = ("webhook", "tests", "policies")  # what the tests read; mutmut copies it from here
# mutmut's exit codes (mutmut/stats.py), grouped as the score counts them.
KILLED = {1, 3, 37}
TIMEOUT = {36, -24, 24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def settings() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]


def workdir(module: str) -> Path:
    return WORK / module.removesuffix(".py").replace("/", ".")


def _toml(value: object) -> str:
    # Strings, booleans, numbers and lists of them: JSON spells these as TOML does.
    return json.dumps(value)


def module_config(module: str, tests: list[str], tool: dict) -> str:
    """The pyproject.toml mutmut reads in the module's working directory."""
    config = dict(tool["mutmut"], only_mutate=[module],
                  pytest_add_cli_args_test_selection=tests)
    lines = ["[tool.mutmut]"] + [f"{k} = {_toml(v)}" for k, v in config.items()]
    pytest_ini = tool.get("pytest", {}).get("ini_options", {})
    lines += ["", "[tool.pytest.ini_options]"]
    lines += [f"{k} = {_toml(v)}" for k, v in pytest_ini.items() if k != "testpaths"]
    return "\n".join(lines) + "\n"


def prepare(module: str, text: str, fresh: bool) -> Path:
    where = workdir(module)
    if fresh and where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = where / name
        if not link.exists():
            link.symlink_to(os.path.relpath(ROOT / name, where))
    (where / "pyproject.toml").write_text(text)
    return where


def results(module: str) -> dict[str, int | None]:
    meta = workdir(module) / "mutants" / (module + ".meta")
    if not meta.exists():
        return {}
    return json.loads(meta.read_text())["exit_code_by_key"]


def survivors(module: str) -> list[str]:
    return sorted(k for k, v in results(module).items() if v not in KILLED)


def run(module: str, tests: list[str], tool: dict, fresh: bool, children: int) -> int:
    text = module_config(module, tests, tool)
    earlier = workdir(module) / "pyproject.toml"
    # mutmut resets every result when the test selection changes: start clean instead.
    fresh = fresh or not earlier.exists() or earlier.read_text() != text
    where = prepare(module, text, fresh)
    mutmut = Path(sys.executable).with_name("mutmut")
    again = [] if fresh else survivors(module)
    command = [str(mutmut), "run", "--max-children", str(children), *again]
    log = where / "mutmut.log"
    print(f"== {module}: mutmut over {' '.join(tests)} (log: {log.relative_to(ROOT)})",
          flush=True)
    with log.open("w") as out:
        code = subprocess.call(command, cwd=where, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
    return code


def show(module: str, equivalent: list[str]) -> None:
    mutmut = Path(sys.executable).with_name("mutmut")
    for name in survivors(module):
        if name not in equivalent:
            subprocess.call([str(mutmut), "show", name], cwd=workdir(module))


def score_line(module: str, equivalent: list[str]) -> tuple[str, list[str], list[str]]:
    found = results(module)
    if not found:
        return f"{module:34} not run", [], []
    status = Counter()
    for name, code in found.items():
        if name in equivalent:
            status["equivalent"] += 1
        elif code in KILLED or code in TIMEOUT:
            status["killed"] += 1  # a timeout is a mutant the tests did not let finish
        elif code in NO_TESTS:
            status["no tests"] += 1
        elif code in SURVIVED:
            status["survived"] += 1
        else:
            status["other"] += 1
    total = len(found) - status["equivalent"]
    score = 100 * status["killed"] / total if total else 100.0
    left = sorted(n for n, c in found.items() if n not in equivalent and c not in KILLED
                  and c not in TIMEOUT)
    stale = sorted(n for n in equivalent if n not in found or found[n] in KILLED)
    line = (f"{module:34} {status['killed']:4} / {total:<4} killed {score:5.1f} %"
            f"   ({status['equivalent']} equivalent, {status['survived']} survived, "
            f"{status['no tests']} no tests, {status['other']} not run or other)")
    return line, left, stale


def report(modules: list[str], tool: dict) -> bool:
    equivalent = tool["mutation"].get("equivalent", {})
    threshold = tool["mutation"].get("threshold", 90)
    print("\nmutation scores (killed / mutants, equivalent mutants excluded)")
    ok = True
    for module in modules:
        line, left, stale = score_line(module, equivalent.get(module, []))
        print(line)
        for name in left:
            print(f"    not killed: {name}")
        for name in stale:
            print(f"    listed as equivalent but killed or gone: {name}")
        found = results(module)
        total = len(found) - len([n for n in equivalent.get(module, []) if n in found])
        killed = sum(1 for n, c in found.items() if n not in equivalent.get(module, [])
                     and (c in KILLED or c in TIMEOUT))
        ok = ok and bool(found) and killed * 100 >= threshold * total
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="default: every module in [tool.mutation]")
    parser.add_argument("--resume", action="store_true",
                        help="keep earlier results and rerun only mutants not yet killed")
    parser.add_argument("--report", action="store_true", help="only print the last scores")
    parser.add_argument("--show", action="store_true",
                        help="print the diffs of the mutants not killed in the last runs")
    args = parser.parse_args(argv)
    tool = settings()
    configured: dict[str, list[str]] = tool["mutation"]["modules"]
    modules = args.modules or list(configured)
    unknown = [m for m in modules if m not in configured]
    if unknown:
        parser.error(f"not configured in [tool.mutation.modules]: {', '.join(unknown)}")
    children = int(tool["mutation"].get("max_children", 2))
    if args.show:
        for module in modules:
            show(module, tool["mutation"].get("equivalent", {}).get(module, []))
        return 0
    if not args.report:
        for module in modules:
            fresh = not (args.resume and results(module))
            code = run(module, configured[module], tool, fresh, children)
            if code != 0:
                print(f"mutmut failed on {module} (exit {code})", file=sys.stderr)
                return code
    return 0 if report(modules, tool) else 1


if __name__ == "__main__":
    sys.exit(main())
