"""`policy lint DIR` and `policy test DIR` as a policy repository's CI runs them: errors name
the file as the user gave the folder (editors and CI annotations open it), and each case is one
PASS or FAIL line."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.paths import POLICIES


def test_lint_of_a_clean_folder_says_how_many_documents_and_which_revision(cli, bundled) -> None:
    assert cli(["policy", "lint", str(POLICIES)]) == (
        0, f"ok: {bundled.document_count} documents, revision {bundled.revision}\n", "")


def test_lint_names_the_file_as_given_with_line_column_and_field(cli, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    overrides = folder / "30-overrides.yaml"
    overrides.write_text(overrides.read_text().replace("spec.nodeSelector", "spec.nodeSelectr"))
    code, out, err = cli(["policy", "lint", str(folder)])
    assert (code, err) == (1, "")
    assert out == (
        f"{overrides}:27:7: document 1 (OverridePolicy/default): spec.allowedFields[3]: bad "
        "value 'spec.nodeSelectr': spec (PodSpec) has no field 'nodeSelectr'; did you mean "
        "'spec.nodeSelector'?\n"
        "1 error(s); the webhook would keep its last good policy set\n")


def test_policy_test_prints_one_line_a_case_and_the_tally(cli) -> None:
    code, out, err = cli(["policy", "test", str(POLICIES)])
    lines = out.splitlines()
    cases = sorted((POLICIES / "tests").glob("*.yaml"))
    assert (code, err) == (0, "")
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"
    assert all(line.startswith("PASS ") for line in lines[:-1])
    assert {line.split()[1].rstrip(":") for line in lines[:-1]} == {c.name for c in cases}


def test_a_failing_case_is_exit_1_with_what_differed(cli, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    case = folder / "tests" / "executor.yaml"
    case.write_text(case.read_text().replace("allowed: true", "allowed: false", 1))
    code, out, _ = cli(["policy", "test", str(folder)])
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert len(failed) == 1 and failed[0].startswith("FAIL executor.yaml: ")
    assert out.splitlines()[-1].endswith(" passed, 1 failed")
