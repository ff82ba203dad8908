"""PodTemplate: a fragment merged into matching pods in priority order, and what it locks."""

from __future__ import annotations

from webhook.pod.field_paths import parse_path
from webhook.policy.model import Match, Source

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def template(name: str, spec: str) -> str:
    return API + f"kind: PodTemplate\nmetadata: {{name: {name}}}\nspec:\n{spec}"


BASE = "  template: {spec: {containers: [{name: base, securityContext: {}}]}}\n"


def test_templates_apply_by_priority_then_name(compiled) -> None:
    policy = compiled(template("c", BASE + "  priority: 5\n") + "---\n"
                      + template("b", BASE + "  priority: 5\n") + "---\n"
                      + template("a", BASE + "  priority: 10\n") + "---\n"
                      + template("z", BASE))
    assert [(t.name, t.priority) for t in policy.templates] == [
        ("z", 0), ("b", 5), ("c", 5), ("a", 10)]
    first = policy.templates[0]
    assert first.match == Match()
    assert first.source == Source("p.yaml", 3)
    assert dict(first.template) == {"spec": {"containers": [{"name": "base",
                                                             "securityContext": {}}]}}


def test_locked_fields_are_kept_as_parsed_paths(compiled) -> None:
    policy = compiled(template("t", BASE + "  match: {namespaces: [team]}\n"
                                    "  lockedFields: ['spec.containers[base].securityContext', "
                                    "'spec.containers[*].image', spec.hostNetwork]\n"))
    assert policy.templates[0].locked == (
        tuple(parse_path("spec.containers[base].securityContext")),
        tuple(parse_path("spec.containers[*].image")), tuple(parse_path("spec.hostNetwork")))
    assert policy.templates[0].match == Match(namespaces=("team",))


def test_a_lock_on_an_item_the_template_lacks_is_an_error(compile_yaml) -> None:
    _, errors = compile_yaml(template("t", BASE + "  lockedFields: [spec.hostNetwork, "
                                      "'spec.containers[sidecar].image', "
                                      "'spec.containers[base].env[X].value', "
                                      "'spec.containers[base].ports[*]']\n"))
    assert errors == [
        "p.yaml:6:36: document 1 (PodTemplate/t): spec.lockedFields[1]: bad value "
        "'spec.containers[sidecar].image': the template has no spec.containers[sidecar] to lock",
        "p.yaml:6:70: document 1 (PodTemplate/t): spec.lockedFields[2]: bad value "
        "'spec.containers[base].env[X].value': the template has no "
        "spec.containers[base].env[X] to lock"]


def test_a_metadata_lock_is_reported_once_by_the_name_checks(compile_yaml) -> None:
    _, errors = compile_yaml(template("t", BASE + "  lockedFields: [metadata.labels.team, "
                                      "'spec.containers[x].image']\n"))
    assert errors == [
        "p.yaml:6:18: document 1 (PodTemplate/t): spec.lockedFields[0]: bad value "
        "'metadata.labels.team': only spec fields can be locked; Airflow owns the metadata",
        "p.yaml:6:40: document 1 (PodTemplate/t): spec.lockedFields[1]: bad value "
        "'spec.containers[x].image': the template has no spec.containers[x] to lock"]


def test_a_metadata_item_lock_is_left_to_the_name_checks(compile_yaml) -> None:
    _, errors = compile_yaml(template("t", BASE + "  lockedFields: ['metadata.labels[x]']\n"))
    assert errors == [
        "p.yaml:6:18: document 1 (PodTemplate/t): spec.lockedFields[0]: bad value "
        "'metadata.labels[x]': only spec fields can be locked; Airflow owns the metadata"]


def test_a_template_checks_its_match_and_its_fragment(compile_yaml) -> None:
    _, errors = compile_yaml(template("t", "  match: {podTypes: [other]}\n"
                                           "  template: {metadata: {labels: {dag_id: x}}}\n"))
    assert errors == [
        "p.yaml:5:3: document 1 (PodTemplate/t): spec.match.labelSelector: podTypes 'other' "
        "needs a labelSelector: foreign pods are never matched by namespace alone",
        "p.yaml:6:34: document 1 (PodTemplate/t): spec.template.metadata.labels.dag_id: bad "
        "value 'dag_id': Airflow owns this key (it selects and adopts pods by it)"]
