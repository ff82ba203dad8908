"""A pod fragment: fields the pod schema knows, nothing Airflow or kube-apiserver owns."""

from __future__ import annotations

import pytest

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def profile(template: str) -> str:
    return API + f"kind: Profile\nmetadata: {{name: p}}\nspec:\n  template: {template}\n"


def test_a_pasted_pod_template_file_loses_only_its_type_meta(compiled) -> None:
    policy = compiled(profile("{apiVersion: v1, kind: Pod, metadata: {labels: {team: a}}, "
                              "spec: {priorityClassName: low}}"))
    assert dict(policy.profiles["p"].template) == {
        "metadata": {"labels": {"team": "a"}}, "spec": {"priorityClassName": "low"}}


def test_null_metadata_would_drop_airflow_identity(compile_yaml) -> None:
    reason = ("may not be null: it would remove Airflow's labels and annotations, which select "
              "the pod for the validating webhook; remove single keys instead")
    _, errors = compile_yaml(profile("{metadata: null}"))
    assert errors == [f"p.yaml:5:24: document 1 (Profile/p): spec.template.metadata: bad value "
                      f"'null': {reason}"]
    _, errors = compile_yaml(profile("{metadata: {labels: null, annotations: null}}"))
    assert errors == [
        f"p.yaml:5:33: document 1 (Profile/p): spec.template.metadata.labels: bad value "
        f"'null': {reason}",
        f"p.yaml:5:52: document 1 (Profile/p): spec.template.metadata.annotations: bad value "
        f"'null': {reason}"]


@pytest.mark.parametrize("key", ["name", "generateName", "namespace", "uid",
                                 "ownerReferences"])
def test_fields_kube_apiserver_sets_are_refused_at_their_key(compile_yaml, key: str) -> None:
    _, errors = compile_yaml(profile(f"{{metadata: {{{key}: x}}}}"))
    assert f"p.yaml:5:25: document 1 (Profile/p): spec.template.metadata.{key}: bad value " \
           f"'{key}': is set by Airflow and kube-apiserver; a policy may not change it" in errors


def test_airflow_labels_and_annotations_are_refused_at_their_key(compile_yaml) -> None:
    _, errors = compile_yaml(profile(
        "{metadata: {labels: {try_number: '1', dag_id: x, team: a}, "
        "annotations: {task_id: t, note: n}}}"))
    owns = "Airflow owns this key (it selects and adopts pods by it)"
    assert errors == [
        f"p.yaml:5:34: document 1 (Profile/p): spec.template.metadata.labels.try_number: "
        f"bad value 'try_number': {owns}",
        f"p.yaml:5:51: document 1 (Profile/p): spec.template.metadata.labels.dag_id: "
        f"bad value 'dag_id': {owns}",
        f"p.yaml:5:86: document 1 (Profile/p): spec.template.metadata.annotations.task_id: "
        f"bad value 'task_id': {owns}"]


def test_pod_schema_problems_name_the_field_without_quoting_twice(compile_yaml) -> None:
    _, errors = compile_yaml(profile("{spec: {containers: [{name: base, imag: x, "
                                     "resources: {requests: {cpu: lots}}}]}}"))
    assert errors == [
        "p.yaml:5:47: document 1 (Profile/p): spec.template.spec.containers[base].imag: bad "
        "value 'imag': is not a field of Container; did you mean 'image'?",
        "p.yaml:5:84: document 1 (Profile/p): spec.template.spec.containers[base].resources"
        ".requests.cpu: is not a Kubernetes quantity: 'lots'"]
