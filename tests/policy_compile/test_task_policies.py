"""TaskPolicy: a fragment for some DAGs' pods, found by dag_id under both of its spellings."""

from __future__ import annotations

from webhook.airflow_pods import make_safe_label_value
from webhook.policy.model import Match, Source, TaskPolicy

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def task_policy(name: str, dag_ids: str, extra: str = "") -> str:
    return (API + f"kind: TaskPolicy\nmetadata: {{name: {name}}}\nspec:\n"
            f"  match: {{dagIds: {dag_ids}{extra}}}\n"
            f"  template: {{apiVersion: v1, spec: {{priorityClassName: {name}}}}}\n")


def test_exact_dag_ids_index_policies_by_name_under_both_spellings(compiled) -> None:
    policy = compiled(task_policy("zeta", "[etl]") + "---\n"
                      + task_policy("alpha", "['etl', 'my dag']", ", taskIds: [load]"))
    safe = make_safe_label_value("my dag")
    assert safe != "my dag"
    assert set(policy.task_policies_exact) == {"etl", "my dag", safe}
    assert [p.name for p in policy.task_policies_exact["etl"]] == ["alpha", "zeta"]
    alpha = TaskPolicy("alpha", Match(dag_ids=("etl", "my dag"), task_ids=("load",)),
                       {"spec": {"priorityClassName": "alpha"}}, Source("p.yaml", 1))
    assert policy.task_policies_exact["my dag"] == (alpha,)
    assert policy.task_policies_exact[safe] == (alpha,)
    assert policy.task_policies_glob == ()


def test_a_glob_puts_the_policy_in_the_glob_list_only(compiled) -> None:
    policy = compiled(task_policy("b", "[etl, 'report_*']") + "---\n"
                      + task_policy("a", "['*']") + "---\n" + task_policy("c", "[etl]"))
    assert [p.name for p in policy.task_policies_glob] == ["a", "b"]
    assert dict(policy.task_policies_exact) == {"etl": (policy.task_policies_exact["etl"][0],)}
    assert policy.task_policies_exact["etl"][0].name == "c"


def test_a_task_policy_is_a_grant(compile_yaml) -> None:
    _, errors = compile_yaml(task_policy("t", "[etl]", ", podTypes: [kpo]"))
    assert errors == [
        "p.yaml:5:19: document 1 (TaskPolicy/t): spec.match.dagIds: a KPO pod's DAG and task "
        "ids are its author's choice and never select this, so it would never apply; scope "
        "it by namespaces with dagIds ['*'] (docs/threat-model.md)"]


def test_a_task_policy_template_is_checked_as_a_fragment(compile_yaml) -> None:
    _, errors = compile_yaml(task_policy("t", "[etl]").replace(
        "{apiVersion: v1, spec:", "{metadata: {name: x}, spec:"))
    assert errors == [
        "p.yaml:6:25: document 1 (TaskPolicy/t): spec.template.metadata.name: bad value "
        "'name': is set by Airflow and kube-apiserver; a policy may not change it"]
