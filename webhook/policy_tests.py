"""Policy tests for the admin's Git repo: a pod in, the expected decisions of both hooks out.

Like `kyverno test` and `gator verify`, cases live beside the policies (`policies/tests/*.yaml`,
pods they name under it) so the repo's CI proves a policy change before it merges:

    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: PolicyTest
    metadata: {name: executor-gets-defaults}
    spec:
      namespace: data-airflow          # default: the pod's metadata.namespace
      username: system:serviceaccount:airflow:airflow-scheduler   # optional (None: unchecked)
      today: "2026-11-20"              # optional: the date exemptions expire against
      pod: {...}                       # an inline pod, or
      podFile: pods/executor.json      # a JSON/YAML pod, relative to the test file
      expect:
        mutate:
          allowed: true
          refusals: [substring, ...]   # each in some refusal message; [] means none at all
          warnings: [substring, ...]   # likewise, for the mutating hook's warnings
          applied: [PodTemplate/x, ...]  # each in the list of what was applied
          fields: {"spec.containers[base].resources.limits.memory": 4Gi}   # null: unset
        validate:                      # judged on the MUTATED pod, as in the cluster
          allowed: false
          message: "exact denial message"
          messageContains: [substring, ...]
          rulesViolated: ["baseline: privileged"]   # exactly these (sorted, unwaived)
          warnings: [substring, ...]   # each in some warning; [] means none at all
          exempted: [exemption-name]   # exactly these

`run_case` is pure; `load_cases` reads the files; `run_policy_tests` does both.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker

from webhook.decide import PodRequest, decide
from webhook.kube.pod_fields import did_you_mean
from webhook.mutation.mutate import MutationResult
from webhook.pod.field_paths import format_path, get_values, parse_path
from webhook.policy.compile import schema_errors
from webhook.policy.model import PolicySet
from webhook.policy.names import check_field_path
from webhook.policy.schema import API_VERSION
from webhook.validation.validate import ValidationResult

KIND = "PolicyTest"
FIELD_PATH_HINT = ("a field path is fields joined by dots, a list item by its name in brackets "
                   "(spec.containers[base]) or [*] for every item, and a map key holding dots or "
                   "slashes in brackets (resources.limits[nvidia.com/gpu]); README, "
                   "\"Policy tests\"")
TEST_SUFFIXES = (".yaml", ".yml")
_STRINGS = {"type": "array", "items": {"type": "string"}}
CASE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": KIND},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string", "minLength": 1}}},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["pod", "expect"],
            "properties": {
                "namespace": {"type": "string"},
                "username": {"type": "string"},
                "today": {"type": "string", "format": "date"},
                "pod": {"type": "object"},
                "podFile": {"type": "string"},
                "expect": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {
                        "mutate": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "allowed": {"type": "boolean"},
                                "refusals": _STRINGS,
                                "warnings": _STRINGS,
                                "applied": _STRINGS,
                                "fields": {"type": "object"},
                            },
                        },
                        "validate": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "allowed": {"type": "boolean"},
                                "message": {"type": "string"},
                                "messageContains": _STRINGS,
                                "rulesViolated": _STRINGS,
                                "warnings": _STRINGS,
                                "exempted": _STRINGS,
                            },
                        },
                    },
                },
            },
        },
    },
}
_CASE_VALIDATOR = Draft202012Validator(CASE_SCHEMA, format_checker=FormatChecker())


@dataclass(frozen=True)
class CaseResult:
    name: str
    file: str
    passed: bool
    mismatches: tuple[str, ...] = ()
    index: int = 0  # the document's position in its file
    unreadable: bool = False  # the case (or its pod file) could not be read: bad input


class Unreadable(str):
    """The text of a case that could not be read at all (I/O, not YAML): bad input."""


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _normalise(case: Any) -> Any:
    """YAML reads `today: 2026-11-20` as a date: accept it as the ISO string it means."""
    if isinstance(case, dict) and isinstance(case.get("spec"), dict):
        today = case["spec"].get("today")
        if isinstance(today, date):
            case = {**case, "spec": {**case["spec"], "today": today.isoformat()}}
    return case


def case_name(case: Any) -> str:
    meta = case.get("metadata") if isinstance(case, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else "<unnamed>"


def run_case(case: dict, policies: PolicySet) -> CaseResult:
    """Run one case through the decision core: the mutation, then the validation of the
    mutated pod, as in the cluster."""
    case = _normalise(case)
    name = case_name(case)
    if not isinstance(case, dict):
        return CaseResult(name, "", False, (f"{name}: a test case must be a mapping",))
    errors = schema_errors(_CASE_VALIDATOR, case, "")
    if errors:
        return CaseResult(name, "", False, tuple(f"{name}: {path}: {reason}"
                                                 for path, reason in errors))
    spec = case["spec"]
    pod = copy.deepcopy(spec["pod"])
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    namespace = spec.get("namespace") or meta.get("namespace") or "default"
    username = spec.get("username")
    today = date.fromisoformat(spec["today"]) if "today" in spec else None
    expect = spec["expect"]
    mismatches: list[str] = []
    try:
        decision = decide(PodRequest(pod, namespace, username, today=today), policies)
    except Exception as exc:  # a crash is a finding, not the end of the test run
        return CaseResult(name, "", False, (f"{name}: the webhook raised {exc!r}",))
    if decision.caps:
        return CaseResult(name, "", False, (f"{name}: the webhook refuses the pod before "
                                            f"judging it: {decision.message}",))
    assert decision.mutation is not None  # BOTH always mutates first
    mismatches += _check_mutation(name, expect.get("mutate"), decision.mutation)
    if "validate" in expect:
        if decision.validation is None:
            refused = "; ".join(r.message for r in decision.refusals)
            mismatches.append(f"{name}: expect.validate: not reached, the mutating hook "
                              f"refused the pod: {refused}")
        else:
            mismatches += _check_validation(name, expect["validate"], decision.validation)
    return CaseResult(name, "", not mismatches, tuple(mismatches))


def _missing_substrings(name: str, where: str, wanted: list[str], have: list[str]
                        ) -> list[str]:
    if wanted == [] and have:
        return [f"{name}: {where}: expected none, got {_show(have)}"]
    return [f"{name}: {where}: expected one containing {_show(s)}, got {_show(have)}"
            for s in wanted if not any(s in h for h in have)]


def _check_mutation(name: str, expect: dict | None, mutation: MutationResult) -> list[str]:
    if not expect:
        return []
    out = []
    refusals = [r.message for r in mutation.refusals]
    if "allowed" in expect and expect["allowed"] is not mutation.allowed:
        got = f"refused: {'; '.join(refusals)}" if refusals else "allowed"
        out.append(f"{name}: expect.mutate.allowed: expected {_show(expect['allowed'])}, "
                   f"got {_show(mutation.allowed)} ({got})")
    if "refusals" in expect:
        out += _missing_substrings(name, "expect.mutate.refusals", expect["refusals"], refusals)
    if "warnings" in expect:
        out += _missing_substrings(name, "expect.mutate.warnings", expect["warnings"],
                                   list(mutation.warnings))
    if "applied" in expect:
        out += _missing_substrings(name, "expect.mutate.applied",
                                   expect["applied"], list(mutation.applied))
    for path, wanted in (expect.get("fields") or {}).items():
        out += _check_field(name, path, wanted, mutation.pod)
    return out


def _check_field(name: str, path: str, wanted: Any, pod: dict) -> list[str]:
    where = f"expect.mutate.fields[{path}]"
    problem = check_field_path(path)
    if problem is not None:
        # A misspelt path would find nothing and pass an expectation of `null`.
        return [f"{name}: {where}: {problem.reason}{did_you_mean(problem.suggestions)} "
                f"({FIELD_PATH_HINT})"]
    segments = parse_path(path)
    found = get_values(pod, segments)
    if wanted is None:
        return [f"{name}: {where}: expected unset, got {_show(v)} at {format_path(p)}"
                for p, v in found]
    if not found:
        return [f"{name}: {where}: expected {_show(wanted)}, got <unset>"]
    return [f"{name}: {where}: expected {_show(wanted)}, got {_show(v)}"
            + (f" at {format_path(p)}" if len(found) > 1 else "")
            for p, v in found if v != wanted]


def _check_validation(name: str, expect: dict, result: ValidationResult) -> list[str]:
    out = []
    if "allowed" in expect and expect["allowed"] is not result.allowed:
        got = f"denied: {result.message}" if not result.allowed else (
            f"allowed, rules violated: {_show(list(result.rules_violated))}")
        out.append(f"{name}: expect.validate.allowed: expected {_show(expect['allowed'])}, "
                   f"got {_show(result.allowed)} ({got})")
    if "message" in expect and expect["message"] != result.message:
        out.append(f"{name}: expect.validate.message: expected {_show(expect['message'])}, "
                   f"got {_show(result.message)}")
    if "messageContains" in expect:
        out += [f"{name}: expect.validate.messageContains: expected the message to contain "
                f"{_show(s)}, got {_show(result.message)}"
                for s in expect["messageContains"] if s not in result.message]
    if "rulesViolated" in expect:
        wanted = sorted(set(expect["rulesViolated"]))
        if wanted != list(result.rules_violated):
            extra = sorted(set(result.rules_violated) - set(wanted))
            missing = sorted(set(wanted) - set(result.rules_violated))
            out.append(f"{name}: expect.validate.rulesViolated: expected {_show(wanted)}, got "
                       f"{_show(list(result.rules_violated))} (unexpected: {_show(extra)}, "
                       f"missing: {_show(missing)})")
    if "warnings" in expect:
        out += _missing_substrings(name, "expect.validate.warnings", expect["warnings"],
                                   list(result.warnings))
    if "exempted" in expect and sorted(expect["exempted"]) != list(result.exempted):
        out.append(f"{name}: expect.validate.exempted: expected "
                   f"{_show(sorted(expect['exempted']))}, got {_show(list(result.exempted))}")
    return out


# ---------------------------------------------------------------------------------------------
# Reading the cases (the only I/O)


def case_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in TEST_SUFFIXES
                  and not p.name.startswith(".") and p.is_file())


def load_cases(folder: Path) -> list[tuple[str, int, dict | str]]:
    """(file, document index, case or error text) for every document in folder/*.yaml;
    a `podFile` is read into `spec.pod`."""
    out: list[tuple[str, int, dict | str]] = []
    for path in case_files(Path(folder)):
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            out.append((path.name, 0, Unreadable(f"cannot read {path.name}: {exc}")))
            continue
        for index, case in enumerate(documents):
            out.append((path.name, index, _with_pod_file(path.parent, case)))
    return out


def _with_pod_file(folder: Path, case: Any) -> dict | str:
    spec = case.get("spec") if isinstance(case, dict) else None
    if not isinstance(spec, dict) or "podFile" not in spec:
        return case if isinstance(case, dict) else f"{case_name(case)}: must be a mapping"
    if "pod" in spec:
        return f"{case_name(case)}: spec: give either pod or podFile, not both"
    pod_file = spec["podFile"]
    try:
        pod = yaml.safe_load((folder / str(pod_file)).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return Unreadable(f"{case_name(case)}: spec.podFile: cannot read {pod_file}: {exc}")
    return {**case, "spec": {**spec, "pod": pod}}


def run_policy_tests(folder: Path, policies: PolicySet) -> list[CaseResult]:
    """Run every case under folder/tests (the policy folder) or folder itself."""
    folder = Path(folder)
    tests = folder / "tests" if (folder / "tests").is_dir() else folder
    results = []
    for file, index, case in load_cases(tests):
        if isinstance(case, str):
            results.append(CaseResult(f"{file}#{index}", file, False, (case,), index,
                                      unreadable=isinstance(case, Unreadable)))
        else:
            results.append(replace(run_case(case, policies), file=file, index=index))
    return results
