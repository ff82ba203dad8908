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


TOLERATING = """\
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Profile
metadata: {name: spot}
spec:
  template:
    spec:
      tolerations: [{key: spot, operator: Exists, effect: NoSchedule}]
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
    ("a: [1,\n", "bad.yaml:2:1: YAML syntax error: did not find expected node content "
                 "(while parsing a flow node)"),
    (GOOD.replace("Profile", "Profil"),
     "bad.yaml:2:7: document 1 (Profil/small): kind: bad value 'Profil': must be one of "
     "PodTemplate, Profile, TaskPolicy, OverridePolicy, Envelope, ValidationPolicy, Exemption, "
     "Settings; "
     "did you mean 'Profile'?"),
    (GOOD.replace("v1alpha1", "v1"),
     "bad.yaml:1:13: document 1 (Profile/small): apiVersion: bad value "
     "'airflow-pod-webhook.io/v1': must be airflow-pod-webhook.io/v1alpha1"),
    (GOOD.replace("template:", "templates:"),
     "bad.yaml:5:3: document 1 (Profile/small): spec.templates: bad value 'templates': is not "
     "a field here (fields: description, match, template); did you mean 'template'?"),
    (GOOD.replace("resources:", "resource:"),
     "bad.yaml:7:33: document 1 (Profile/small): spec.template.spec.containers[base].resource: "
     "bad value 'resource': is not a field of Container; did you mean 'resources'?"),
    (GOOD.replace("250m", "lots"),
     "bad.yaml:7:61: document 1 (Profile/small): spec.template.spec.containers[base].resources"
     ".requests.cpu: is not a Kubernetes quantity: 'lots'"),
    (GOOD.replace("name: small", "name: Small_One"),
     "bad.yaml:3:18: document 1 (Profile/Small_One): metadata.name: bad value 'Small_One': "
     "must match the pattern ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
    (GOOD + "---\n" + GOOD,
     "bad.yaml:11:18: document 2 (Profile/small): metadata.name: bad value 'small': duplicate "
     "Profile name, first defined in bad.yaml (document 1)"),
    (GOOD.replace("spec:\n      containers", "metadata: {labels: {dag_id: x}}\n    spec:\n"
                  "      containers"),
     "bad.yaml:6:25: document 1 (Profile/small): spec.template.metadata.labels.dag_id: bad "
     "value 'dag_id': Airflow owns this key (it selects and adopts pods by it)"),
    ("""\
     apiVersion: airflow-pod-webhook.io/v1alpha1
     kind: PodTemplate
     metadata: {name: t}
     spec:
       template: {spec: {containers: [{name: base, securityContext: {}}]}}
       lockedFields: ["spec.containers[sidecar].securityContext"]
     """, "bad.yaml:6:18: document 1 (PodTemplate/t): spec.lockedFields[0]: bad value "
          "'spec.containers[sidecar].securityContext': the template has no "
          "spec.containers[sidecar] to lock"),
    ("""\
     apiVersion: airflow-pod-webhook.io/v1alpha1
     kind: Exemption
     metadata: {name: e}
     spec: {match: {namespaces: [a]}, reason: r, expires: "next week"}
     """, "bad.yaml:4:54: document 1 (Exemption/e): spec.expires: bad value 'next week': must "
          "be a date, YYYY-MM-DD"),
    ("""\
     apiVersion: airflow-pod-webhook.io/v1alpha1
     kind: OverridePolicy
     metadata: {name: o}
     spec: {allowedProfiles: [nope]}
     """, "bad.yaml:4:26: document 1 (OverridePolicy/o): spec.allowedProfiles[0]: bad value "
          "'nope': no Profile named 'nope' (profiles: other)"),
    ("""\
     apiVersion: airflow-pod-webhook.io/v1alpha1
     kind: OverridePolicy
     metadata: {name: o}
     spec: {maxResources: {memory: 32Gi}}
     """, "bad.yaml:4:8: document 1 (OverridePolicy/o): spec.maxResources: bad value "
          "'maxResources': is not a field here (fields: match, allowedFields, allowedProfiles)"),
    ("""\
     apiVersion: airflow-pod-webhook.io/v1alpha1
     kind: OverridePolicy
     metadata: {name: o}
     spec: {allowedProfiles: [othr]}
     """, "bad.yaml:4:26: document 1 (OverridePolicy/o): spec.allowedProfiles[0]: bad value "
          "'othr': no Profile named 'othr' (profiles: other); did you mean 'other'?"),
])
def test_broken_file_reported_with_file_line_document_path_value_and_reason(
        tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, "good.yaml", GOOD.replace("small", "other"))
    write(tmp_path, "bad.yaml", text)
    result = load_policy_dir(tmp_path)
    assert result.policy_set is None
    assert expected in [str(e) for e in result.errors]


def test_missing_folder_is_an_error_not_a_crash(tmp_path: Path) -> None:
    result = load_policy_dir(tmp_path / "nope")
    assert result.policy_set is None and "is not a folder" in str(result.errors[0])


def test_policy_lint_prints_errors_and_exits_non_zero(tmp_path: Path, capsys) -> None:
    write(tmp_path, "bad.yaml", GOOD.replace("250m", "lots"))
    assert main(["policy", "lint", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    # The file as given on the command line: an editor or a CI annotation can open it.
    assert out.startswith(f"{tmp_path}/bad.yaml:7:61: document 1 (Profile/small): "
                          "spec.template.spec.containers[base].resources.requests.cpu: ")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("imagePullPolicy", "Allways", "spec.template.spec.containers[base].imagePullPolicy: must "
     "be one of 'Always', 'IfNotPresent', 'Never', got 'Allways'; did you mean 'Always'?"),
    ("restartPolicy", "Allways", "spec.template.spec.containers[base].restartPolicy: must be "
     "one of 'Always', 'OnFailure', 'Never', got 'Allways'; did you mean 'Always'?"),
])
def test_policy_lint_checks_enum_values_against_the_pod_schema(
        tmp_path: Path, capsys, field: str, value: str, message: str) -> None:
    write(tmp_path, "bad.yaml", GOOD.replace("name: base,", f"name: base, {field}: {value},"))
    assert main(["policy", "lint", str(tmp_path)]) == 1
    assert message in capsys.readouterr().out


def test_a_toleration_operator_typo_is_a_lint_error(tmp_path: Path, capsys) -> None:
    write(tmp_path, "bad.yaml", TOLERATING.replace("operator: Exists", "operator: Exist"))
    assert main(["policy", "lint", str(tmp_path)]) == 1
    assert ("spec.template.spec.tolerations[0].operator: must be one of 'Exists', 'Equal', "
            "got 'Exist'; did you mean 'Exists'?") in capsys.readouterr().out


def test_policy_lint_accepts_the_bundled_policies(capsys) -> None:
    assert main(["policy", "lint", "policies"]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_quantities_may_be_written_as_numbers(tmp_path: Path) -> None:
    # As in many pasted pod_template_files: kube-apiserver accepts `cpu: 1` as well as "1".
    write(tmp_path, "a.yaml", GOOD.replace("cpu: 250m", "cpu: 1, memory: 0.5"))
    assert load_policy_dir(tmp_path).errors == ()


def test_an_unreadable_file_is_an_error_of_that_file_not_a_crash(tmp_path: Path, capsys,
                                                                  monkeypatch) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD.replace("small", "large"))
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "b.yaml":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = load_policy_dir(tmp_path)
    assert result.policy_set is None
    assert [str(e) for e in result.errors] == ["b.yaml: cannot be read: Permission denied"]
    assert main(["policy", "lint", str(tmp_path)]) == 2
    assert capsys.readouterr().out.startswith(
        f"{tmp_path}/b.yaml: cannot be read: Permission denied\n")


SETTINGS_LIMITS = """\
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Settings
metadata: {name: settings}
spec:
  limits: {tolerations: 50, annotationsBytes: 4096}
"""


def test_settings_limits_override_the_defaults_they_name(tmp_path: Path) -> None:
    from webhook.policy.model import Limits

    write(tmp_path, "settings.yaml", SETTINGS_LIMITS)
    result = load_policy_dir(tmp_path)
    assert result.errors == ()
    assert result.policy_set.settings.limits == Limits(tolerations=50, annotations_bytes=4096)


@pytest.mark.parametrize(("limits", "expected"), [
    ("{tolerations: 0}", "settings.yaml:5:25: document 1 (Settings/settings): "
                         "spec.limits.tolerations: bad value '0': is less than the minimum of 1"),
    ("{toleration: 5}", "settings.yaml:5:12: document 1 (Settings/settings): "
                        "spec.limits.toleration: bad value 'toleration': is not a field here"),
])
def test_settings_limits_are_positive_and_named(tmp_path: Path, limits: str,
                                                expected: str) -> None:
    write(tmp_path, "settings.yaml", SETTINGS_LIMITS.replace(
        "{tolerations: 50, annotationsBytes: 4096}", limits))
    [error] = load_policy_dir(tmp_path).errors
    assert str(error).startswith(expected), str(error)


EXEMPTION = """\
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Exemption
metadata: {name: legacy-nfs}
spec:
  rules: ["baseline: hostPathVolumes"]
  reason: the NFS export mounts the archive by hostPath until the CSI driver lands
  expires: EXPIRES
  match: {namespaces: [airflow-legacy]}
"""


@pytest.mark.parametrize(("expires", "error"), [
    # An impossible date unquoted: PyYAML would raise inside its timestamp constructor.
    ("2030-13-01", "bad value '2030-13-01': must be a date, YYYY-MM-DD"),
    ("2030-02-30", "bad value '2030-02-30': must be a date, YYYY-MM-DD"),
])
def test_an_unquoted_impossible_expiry_date_is_a_lint_error_naming_its_line(
        tmp_path: Path, capsys, expires: str, error: str) -> None:
    write(tmp_path, "60-exemptions.yaml", EXEMPTION.replace("EXPIRES", expires))
    assert main(["policy", "lint", str(tmp_path)]) == 1
    assert capsys.readouterr().out == (
        f"{tmp_path}/60-exemptions.yaml:7:12: document 1 (Exemption/legacy-nfs): spec.expires: "
        f"{error}\n1 error(s); the webhook would keep its last good policy set\n")


def test_an_unquoted_expiry_date_means_the_same_as_a_quoted_one(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", EXEMPTION.replace("EXPIRES", "2030-12-01"))
    unquoted = load_policy_dir(tmp_path)
    write(tmp_path, "a.yaml", EXEMPTION.replace("EXPIRES", '"2030-12-01"'))
    quoted = load_policy_dir(tmp_path)
    assert unquoted.errors == quoted.errors == ()
    assert unquoted.policy_set.exemptions == quoted.policy_set.exemptions
