"""Loading a policy folder: good files compile, broken ones are reported precisely."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from webhook.cli import main
from webhook.policy.load import load_policy_dir

GOOD = """\
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Profile
metadata: {name: small}
spec:
  template:
    spec:
      containers: [{name: base, resources: {requests: {cpu: 250m}}}]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_bundled_policies_load(bundled) -> None:
    assert bundled.document_count >= 10
    assert set(bundled.profiles) == {"small", "highmem", "gpu", "spot"}


def test_several_documents_per_file_and_revision_is_a_content_hash(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD + "---\n" + GOOD.replace("small", "large"))
    first = load_policy_dir(tmp_path)
    assert first.policy_set is not None and set(first.policy_set.profiles) == {"small", "large"}
    assert load_policy_dir(tmp_path).revision == first.revision
    write(tmp_path, "b.yml", GOOD.replace("small", "tiny"))
    assert load_policy_dir(tmp_path).revision != first.revision


def test_hidden_files_and_subfolders_are_not_policies(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    (tmp_path / "..data").mkdir()
    write(tmp_path, ".hidden.yaml", "broken: [")
    (tmp_path / "tests").mkdir()
    write(tmp_path / "tests", "case.yaml", "kind: PolicyTest")
    assert load_policy_dir(tmp_path).errors == ()


@pytest.mark.parametrize(("text", "expected"), [
    ("a: [1,\n", "bad.yaml (document 1): YAML error at line 2, column 1"),
    (GOOD.replace("Profile", "Profil"), "bad.yaml (document 1): kind: 'Profil' is not one of"),
    (GOOD.replace("v1alpha1", "v1"), "apiVersion: 'airflow-pod-webhook.io/v1alpha1' was expected"),
    (GOOD.replace("template:", "templates:"),
     "spec: Additional properties are not allowed ('templates' was unexpected)"),
    (GOOD.replace("resources:", "resource:"),
     "spec.template.spec.containers[base].resource: is not a field of Container"),
    (GOOD.replace("250m", "lots"),
     "spec.template.spec.containers[base].resources.requests.cpu: is not a Kubernetes quantity"),
    (GOOD.replace("name: small", "name: Small_One"), "metadata.name: 'Small_One' does not match"),
    (GOOD + "---\n" + GOOD, "bad.yaml (document 2): metadata.name: duplicate Profile "
                            "'small', first defined in bad.yaml (document 1)"),
    (GOOD.replace("spec:\n      containers", "metadata: {labels: {dag_id: x}}\n    spec:\n"
                  "      containers"),
     "spec.template.metadata.labels.dag_id: Airflow owns this key"),
    ("""\
     apiVersion: airflow-pod-webhook.io/v1alpha1
     kind: PodTemplate
     metadata: {name: t}
     spec:
       template: {spec: {containers: [{name: base, securityContext: {}}]}}
       lockedFields: ["spec.containers[sidecar].securityContext"]
     """, "spec.lockedFields[0]: the template has no spec.containers[sidecar] to lock"),
    ("""\
     apiVersion: airflow-pod-webhook.io/v1alpha1
     kind: Exemption
     metadata: {name: e}
     spec: {match: {namespaces: [a]}, reason: r, expires: "next week"}
     """, "spec.expires: 'next week' is not a 'date'"),
    ("""\
     apiVersion: airflow-pod-webhook.io/v1alpha1
     kind: OverridePolicy
     metadata: {name: o}
     spec: {allowedProfiles: [nope]}
     """, "spec.allowedProfiles[0]: no Profile named 'nope'"),
    ("""\
     apiVersion: airflow-pod-webhook.io/v1alpha1
     kind: OverridePolicy
     metadata: {name: o}
     spec: {maxResources: {memory: 32Gi}}
     """, "spec: Additional properties are not allowed ('maxResources' was unexpected)"),
])
def test_broken_file_reported_with_file_document_path_and_reason(tmp_path: Path, text: str,
                                                                  expected: str) -> None:
    write(tmp_path, "good.yaml", GOOD.replace("small", "other"))
    write(tmp_path, "bad.yaml", text)
    result = load_policy_dir(tmp_path)
    assert result.policy_set is None
    assert any(expected in str(e) for e in result.errors), [str(e) for e in result.errors]


def test_missing_folder_is_an_error_not_a_crash(tmp_path: Path) -> None:
    result = load_policy_dir(tmp_path / "nope")
    assert result.policy_set is None and "is not a folder" in str(result.errors[0])


def test_policy_lint_prints_errors_and_exits_non_zero(tmp_path: Path, capsys) -> None:
    write(tmp_path, "bad.yaml", GOOD.replace("250m", "lots"))
    assert main(["policy", "lint", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad.yaml (document 1): spec.template.spec.containers[base].resources" in out


def test_policy_lint_accepts_the_bundled_policies(capsys) -> None:
    assert main(["policy", "lint", "policies"]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_quantities_may_be_written_as_numbers(tmp_path: Path) -> None:
    # As in many pasted pod_template_files: kube-apiserver accepts `cpu: 1` as well as "1".
    write(tmp_path, "a.yaml", GOOD.replace("cpu: 250m", "cpu: 1, memory: 0.5"))
    assert load_policy_dir(tmp_path).errors == ()
