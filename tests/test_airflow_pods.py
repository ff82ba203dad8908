"""webhook/airflow_pods.py: which pods are Airflow's and which task they run, told as the
admission decision it leads to (issue 15's attacker's side, and issue 24's survivors: a
63-character dag_id, DAG ids with spaces on KPO labels, ids read from the annotations).

Still here for now, with homes elsewhere: the offline run of every attack, malformed
override input and quantities, and the last-resort crash answers.

Each attack of tests/e2e/security_scenarios.py is also run here against the offline core
(the same two calls kube-apiserver makes), so a failure there points at the cluster side.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.e2e.offline_core import admit_offline
from tests.e2e.scenarios import denial_prefix, e2e_policies
from tests.e2e.security_scenarios import (
    ADMITTED,
    ATTACKS,
    BY_NAME,
    DENIED,
    Attack,
    attack_pod,
    check_admitted,
    check_denied,
    namespace_for,
    username,
)
from tests.support.admission_reviews import pod_review
from tests.support.pods import airflow_pod
from tests.support.policies import policy_set
from webhook.airflow_pods import (
    POD_IDENTITY_RULE,
    AirflowTask,
    PodType,
    identify,
    make_safe_label_value,
)
from webhook.hook_selection import selected_by_hooks
from webhook.kube.pod_fields import fragment_errors
from webhook.kube.quantity import parse_quantity
from webhook.mutation.mutate import mutate_pod
from webhook.mutation.overrides import parse_fragment_text
from webhook.policy.load import load_policy_dir
from webhook.policy.model import PolicySet
from webhook.review import INTERNAL_RULE, MUTATE, MUTATE_AND_VALIDATE, VALIDATE, last_resort
from webhook.validation.validate import validate_pod

NS = "airflow-e2e-offline"
P = "airflow-pod-webhook.io/"
# The accounts the bundled Settings trust (release `airflow` in namespace `airflow`).
WORKER = "system:serviceaccount:airflow:airflow-worker"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
FIXTURES = ("airflow2-executor", "airflow3-executor", "airflow2-executor-pod-override",
            "airflow3-executor-pod-override", "airflow3-kpo", "airflow3-kpo-xcom")


def labelled(fixture: str, **labels: str) -> dict:
    pod = airflow_pod(fixture)
    pod["metadata"]["labels"].update(labels)
    return pod


# --- every attack, offline --------------------------------------------------------------------


@pytest.fixture(scope="module")
def e2e_policy_set(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    """What the e2e webhook serves: the bundled policies with e2e_settings()."""
    result = load_policy_dir(e2e_policies(tmp_path_factory.mktemp("e2e") / "policies"))
    assert result.policy_set is not None, result.errors
    return result.policy_set


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack_is_answered_offline_as_in_the_cluster(attack: Attack,
                                                      e2e_policy_set: PolicySet) -> None:
    namespace = namespace_for(attack, NS)
    pod = attack_pod(attack, namespace)
    outcome, result = admit_offline(pod, namespace, username(attack, namespace), e2e_policy_set)
    if attack.outcome == DENIED:
        assert outcome == DENIED, f"admitted: {result}"
        assert isinstance(result, str)
        assert result.startswith(f"{attack.status} {denial_prefix(attack.denied_by)}"), result
        assert check_denied(result, attack) == [], result
    else:
        assert attack.outcome == ADMITTED and outcome != DENIED, result
        assert isinstance(result, dict)
        # Offline there is no Priority plugin: what it computes is checked in e2e only.
        checks = tuple(c for c in attack.checks if c[0][-1] not in ("priority",
                                                                    "preemptionPolicy"))
        assert check_admitted(result, Attack(**{**attack.__dict__, "checks": checks})) == []


# --- classification -----------------------------------------------------------------------------


def test_stock_airflow_pods_have_a_consistent_identity() -> None:
    expected = {"airflow2-executor": PodType.EXECUTOR, "airflow3-executor": PodType.EXECUTOR,
                "airflow2-executor-pod-override": PodType.EXECUTOR,
                "airflow3-executor-pod-override": PodType.EXECUTOR,
                "airflow3-kpo": PodType.KPO, "airflow3-kpo-xcom": PodType.KPO}
    for fixture, pod_type in expected.items():
        task = identify(airflow_pod(fixture), "ns")
        assert (task.pod_type, task.identity_problems) == (pod_type, ()), fixture
        assert task.ids_trusted is (pod_type is PodType.EXECUTOR)


@pytest.mark.parametrize("labels, problem_path", [
    ({"airflow-worker": "3"}, "metadata.labels"),
    ({"kubernetes_executor": "True"}, "metadata.labels"),
    ({"kubernetes_executor": "True", "airflow-worker": "3"}, "metadata.labels"),
])
def test_a_kpo_marker_wins_and_executor_markers_on_it_are_a_problem(labels, problem_path
                                                                     ) -> None:
    task = identify(labelled("airflow3-kpo", **labels), "ns")
    assert task.pod_type is PodType.KPO and not task.ids_trusted
    [(path, requirement, value)] = task.identity_problems
    assert path == problem_path
    assert value == ", ".join(k for k in ("kubernetes_executor", "airflow-worker")
                              if k in labels)
    assert "remove them from the operator's labels=" in requirement


@pytest.mark.parametrize("drop, kept", [("kubernetes_executor", "airflow-worker"),
                                        ("airflow-worker", "kubernetes_executor")])
def test_one_executor_marker_alone_is_judged_as_kpo_and_denied(bundled, drop, kept) -> None:
    pod = airflow_pod("airflow3-executor")
    del pod["metadata"]["labels"][drop]
    task = identify(pod, "ns")
    assert task.pod_type is PodType.KPO and not task.ids_trusted
    mutated = mutate_pod(pod, bundled, "data-airflow", SCHEDULER).pod  # as the hook sees it
    result = validate_pod(mutated, bundled, "data-airflow", SCHEDULER)
    assert not result.allowed
    # ... and, judged as a KPO pod, the chart worker's labels and Secrets are not its to keep
    assert {v.rule for v in result.violations["enforce"]} == {
        POD_IDENTITY_RULE, "envelope: labels", "envelope: secrets"}
    assert f"metadata.labels.{kept} must come with" in result.message


@pytest.mark.parametrize("labels, problems", [
    ({"airflow-worker": "3"}, (
        "metadata.labels", "must not hold the executor's label(s) airflow-worker on a "
        "KubernetesPodOperator pod (kubernetes_pod_operator=True); remove them from the "
        "operator's labels= (the executor would adopt or watch this pod as its own)",
        "airflow-worker")),
    ({"kubernetes_executor": "True", "airflow-worker": "3"}, (
        "metadata.labels", "must not hold the executor's label(s) kubernetes_executor and "
        "airflow-worker on a KubernetesPodOperator pod (kubernetes_pod_operator=True); remove "
        "them from the operator's labels= (the executor would adopt or watch this pod as its "
        "own)", "kubernetes_executor, airflow-worker")),
])
def test_what_a_kpo_pod_with_executor_markers_is_told(labels, problems) -> None:
    assert identify(labelled("airflow3-kpo", **labels), "ns").identity_problems == (problems,)


@pytest.mark.parametrize("drop, problems", [
    ("kubernetes_executor", (
        "metadata.labels.airflow-worker", "must come with kubernetes_executor=True, as on every "
        "KubernetesExecutor pod; remove airflow-worker from the pod's labels", "3")),
    ("airflow-worker", (
        "metadata.labels.kubernetes_executor", "must come with airflow-worker, as on every "
        "KubernetesExecutor pod; remove kubernetes_executor from the pod's labels", "True")),
])
def test_what_a_pod_with_one_executor_marker_is_told(drop, problems) -> None:
    pod = airflow_pod("airflow3-executor")
    del pod["metadata"]["labels"][drop]
    assert identify(pod, "ns").identity_problems == (problems,)


def test_an_executor_marker_with_another_value_is_still_an_airflow_pod() -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["labels"]["kubernetes_executor"] = "yes"  # still selected: airflow-worker
    assert selected_by_hooks(pod)
    task = identify(pod, "ns")
    assert task.pod_type is PodType.KPO and task.identity_problems


@pytest.mark.parametrize("value", ["False", "true", ""])
def test_a_kpo_marker_that_is_not_true_marks_no_airflow_pod(value: str) -> None:
    # KPO writes kubernetes_pod_operator=True; the hooks select on that exact value, so any
    # other value is a foreign pod, as Kubernetes' label selector would have it.
    pod = {"metadata": {"name": "p", "labels": {"kubernetes_pod_operator": value}}}
    assert not selected_by_hooks(pod)
    assert identify(pod, "ns") == AirflowTask(PodType.OTHER, "ns", None, None, False,
                                              labels={"kubernetes_pod_operator": value})


def test_executor_ids_that_disagree_with_their_labels_are_denied(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"]["dag_id"] = "nfs_export"  # the label still says example_dag
    task = identify(pod, "ns")
    assert not task.ids_trusted
    result = validate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert not result.allowed
    assert ("metadata.labels.dag_id must be the annotation dag_id='nfs_export' as Airflow "
            "sanitises it; do not set either in pod_override, got \"example_dag\" "
            "(airflow: podIdentity)") in result.message


def test_the_identity_rule_is_never_waived(bundled) -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Exemption
        metadata: {name: everything}
        spec:
          reason: test
          match: {podTypes: [kpo]}
          rules: ["*", "airflow"]
    """)
    # Naming it outright is a lint error (tests/test_policy_names.py): such a policy never loads.
    result = validate_pod(labelled("airflow3-kpo", **{"airflow-worker": "3"}), policies,
                          "data-airflow", WORKER)
    assert not result.allowed and result.rules_violated == (POD_IDENTITY_RULE,)
    assert result.exempted == ()


def test_a_kpo_pod_privileged_with_the_executor_label_is_judged_not_foreign(bundled) -> None:
    pod = attack_pod(BY_NAME["kpo-with-airflow-worker-label"], "data-airflow")
    mutated = mutate_pod(pod, bundled, "data-airflow", WORKER)
    assert mutated.covered and mutated.task.pod_type is PodType.KPO
    # the templates' locks still apply to it
    assert mutated.pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    result = validate_pod(mutated.pod, bundled, "data-airflow", WORKER)
    assert not result.allowed
    assert set(result.rules_violated) >= {POD_IDENTITY_RULE, "baseline: privileged",
                                          "baseline: hostNamespaces",
                                          "baseline: hostPathVolumes"}


def test_the_webhook_knows_a_stock_executor_pod_by_the_schedulers_exact_ids() -> None:
    pod = airflow_pod("airflow3-executor")
    assert identify(pod, "data-airflow") == AirflowTask(
        pod_type=PodType.EXECUTOR, namespace="data-airflow", dag_id="example_dag",
        task_id="extract", exact_ids=True,
        # the annotation, not the sanitised label "scheduled__2026-11-20T0630000000-21459779b"
        run_id="scheduled__2026-11-20T06:30:00+00:00", try_number="2", map_index=None,
        labels=pod["metadata"]["labels"])


def test_a_mapped_executor_task_is_known_by_its_map_index() -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["labels"]["map_index"] = pod["metadata"]["annotations"]["map_index"] = "7"
    task = identify(pod, "data-airflow")
    assert (task.map_index, task.identity_problems) == ("7", ())


def test_ids_airflow_wrote_only_as_annotations_are_still_known() -> None:
    pod = airflow_pod("airflow3-executor")
    del pod["metadata"]["labels"]["try_number"]
    pod["metadata"]["annotations"].update(try_number="12", map_index="4")
    task = identify(pod, "data-airflow")
    assert (task.try_number, task.map_index, task.identity_problems) == ("12", "4", ())


def test_an_executor_pod_without_id_annotations_is_known_by_its_labels_only() -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"] = {}
    pod["metadata"]["labels"]["map_index"] = "3"
    task = identify(pod, "data-airflow")
    assert (task.pod_type, task.dag_id, task.task_id, task.exact_ids) == (
        PodType.EXECUTOR, "example_dag", "extract", False)
    assert (task.run_id, task.try_number, task.map_index) == (
        "scheduled__2026-11-20T0630000000-21459779b", "2", "3")
    assert task.identity_problems == () and task.ids_trusted


def test_a_kpo_pod_is_known_by_the_labels_its_author_wrote() -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["labels"]["map_index"] = "3"
    assert identify(pod, "data-airflow") == AirflowTask(
        pod_type=PodType.KPO, namespace="data-airflow", dag_id="ml_pipeline",
        task_id="export_csv", exact_ids=False,
        run_id="manual__2026-11-21T0915000000-130797cfc", try_number="1", map_index="3",
        labels=pod["metadata"]["labels"])


def test_a_pod_an_airflow_account_wrote_without_markers_is_an_unmarked_kpo_pod() -> None:
    labels = {"dag_id": "etl", "task_id": "load", "team": "ml"}
    pod = {"metadata": {"name": "p", "labels": labels}, "spec": {}}
    assert identify(pod, "data-airflow", airflow_writer=True) == AirflowTask(
        pod_type=PodType.KPO, namespace="data-airflow", dag_id=None, task_id=None,
        exact_ids=False, labels=labels, unmarked=True)
    # ...and written by anyone else, it is not Airflow's at all
    assert identify(pod, "data-airflow") == AirflowTask(
        pod_type=PodType.OTHER, namespace="data-airflow", dag_id="etl", task_id="load",
        exact_ids=False, labels=labels)


@pytest.mark.parametrize("metadata, namespace", [
    ({"namespace": "from-metadata", "labels": {"kubernetes_pod_operator": "True"}},
     "from-metadata"),
    ({"namespace": 7, "labels": {"kubernetes_pod_operator": "True"}}, ""),
    ({"labels": {"kubernetes_pod_operator": "True", "dag_id": 3, "task_id": None}}, ""),
])
def test_a_pod_without_a_request_namespace_reads_its_own(metadata, namespace) -> None:
    task = identify({"metadata": metadata})
    assert (task.pod_type, task.namespace, task.dag_id, task.task_id) == (
        PodType.KPO, namespace, None, None)
    assert task.labels == {"kubernetes_pod_operator": "True"}


@pytest.mark.parametrize("pod", [{}, {"metadata": None}, {"metadata": "x"},
                                 {"metadata": {"labels": ["kubernetes_pod_operator"],
                                               "annotations": "dag_id"}}])
def test_malformed_metadata_is_a_foreign_pod_not_a_crash(pod) -> None:
    assert identify(pod, "ns") == AirflowTask(PodType.OTHER, "ns", None, None, False, labels={})


# Values computed with Airflow's own pod_generator.make_safe_label_value
# (apache-airflow-providers-cncf-kubernetes 10.25.0): what Airflow writes into the labels.
AIRFLOW_SAFE_LABELS = [
    ("a" * 63, "a" * 63),
    ("a" * 64, "a" * 53 + "-014842d48"),
    ("nightly export", "nightlyexport-57d1ee814"),
    ("export_csv", "export_csv"),
    ("-leading.and.trailing-", "leading.and.trailing-ef370fec6"),
    ("x" * 62 + "_", "x" * 53 + "-d20d4f499"),
    ("Überweisung", "berweisung-8e44fe031"),
    ("team.ml_pipeline-v2", "team.ml_pipeline-v2"),
    ("d" * 64, "d" * 53 + "-e987c862f"),
    ("load data", "loaddata-987aff04a"),
    ("XGBoost export", "XGBoostexport-6c0cc661d"),
]


@pytest.mark.parametrize("value, label", AIRFLOW_SAFE_LABELS)
def test_labels_are_sanitised_exactly_as_airflow_does(value, label) -> None:
    assert make_safe_label_value(value) == label


@pytest.mark.parametrize("dag_id", ["d" * 63, "d" * 64, "nightly export"])
def test_a_stock_executor_pod_with_any_dag_id_airflow_allows_is_admitted(bundled, dag_id
                                                                          ) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"]["dag_id"] = dag_id
    pod["metadata"]["labels"]["dag_id"] = dict(AIRFLOW_SAFE_LABELS).get(dag_id, dag_id)
    task = identify(pod, "data-airflow")
    assert (task.dag_id, task.identity_problems, task.ids_trusted) == (dag_id, (), True)
    mutated = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert mutated.allowed
    assert validate_pod(mutated.pod, bundled, "data-airflow", SCHEDULER).allowed


@pytest.mark.parametrize("key", ["dag_id", "task_id", "run_id", "try_number", "map_index"])
def test_every_rewritten_id_label_on_an_executor_pod_is_denied(bundled, key) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][key] = "7"
    pod["metadata"]["labels"][key] = "8"  # a pod_override that rewrote the label
    result = validate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert not result.allowed and POD_IDENTITY_RULE in result.rules_violated
    assert (f"metadata.labels.{key} must be the annotation {key}='7' as Airflow sanitises it; "
            "do not set either in pod_override, got \"8\" (airflow: podIdentity)"
            ) in result.message


def test_ids_airflow_writes_only_one_way_are_no_identity_problem() -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"]["map_index"] = "7"  # no label: nothing to disagree with
    pod["metadata"]["labels"]["parent_dag_id"] = "x"
    assert identify(pod, "ns").identity_problems == ()


# --- which policies a pod's ids select ----------------------------------------------------------


def _restricted(match: str) -> PolicySet:
    return policy_set(f"""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: ValidationPolicy
        metadata: {{name: strict}}
        spec:
          match: {match}
          mode: enforce
          podSecurity: {{level: restricted, version: latest}}
    """)


def _kpo(**labels: str | None) -> dict:
    """The stock KPO pod (ml_pipeline.export_csv, not restricted-compliant) with its labels
    set, or removed where None."""
    pod = airflow_pod("airflow3-kpo")
    for key, value in labels.items():
        if value is None:
            del pod["metadata"]["labels"][key]
        else:
            pod["metadata"]["labels"][key] = value
    return pod


def _denied_by_restricted(pod: dict, policies: PolicySet) -> bool:
    result = validate_pod(pod, policies, "data-airflow")
    assert result.allowed or all(r.startswith("restricted: ") for r in result.rules_violated)
    return not result.allowed


@pytest.mark.parametrize("match, labels, denied", [
    # A DAG id with spaces reaches a KPO pod's label sanitised: the exact id still selects it.
    ('{dagIds: ["nightly export"]}', {"dag_id": "nightlyexport-57d1ee814"}, True),
    ('{dagIds: ["nightly export"]}', {}, False),
    ('{dagIds: ["XGBoost export"]}', {"dag_id": "XGBoostexport-6c0cc661d"}, True),
    ('{taskIds: ["load data"]}', {"task_id": "loaddata-987aff04a"}, True),
    # A glob is compared with the label as it is, never sanitised.
    ('{dagIds: ["nightly*"]}', {"dag_id": "nightlyexport-57d1ee814"}, True),
    ('{dagIds: ["nightly ex*"]}', {"dag_id": "nightlyexport-57d1ee814"}, False),
    ('{dagIds: ["[n]ightly export"]}', {"dag_id": "nightlyexport-57d1ee814"}, False),
    ('{dagIds: ["nightly?export"]}', {"dag_id": "nightlyexport-57d1ee814"}, False),
    # A restriction for every DAG or task covers a KPO pod whose id label was dropped ...
    ('{dagIds: ["*"]}', {"dag_id": None}, True),
    ('{taskIds: ["*"]}', {"task_id": None}, True),
    # ... and one for a named DAG or task does not.
    ('{dagIds: [ml_pipeline]}', {"dag_id": None}, False),
    ('{taskIds: [export_csv]}', {"task_id": None}, False),
    # The author's task id and labels scope restrictions (never grants) on a KPO pod.
    ('{taskIds: [export_csv]}', {}, True),
    ('{taskIds: [export_*]}', {}, True),
    ('{taskIds: [load]}', {}, False),
    ('{labelSelector: {matchLabels: {team: ml}}}', {"team": "ml"}, True),
    ('{labelSelector: {matchLabels: {team: ml}}}', {"team": "web"}, False),
])
def test_a_restriction_applies_to_the_kpo_pods_its_ids_name(match, labels, denied) -> None:
    assert _denied_by_restricted(_kpo(**labels), _restricted(match)) is denied


def test_an_executor_pods_exact_ids_are_never_compared_sanitised() -> None:
    # The scheduler's exact id "nightly export" is the only one this DAG's executor pods carry:
    # a policy naming the sanitised form names another DAG.
    pod = airflow_pod("airflow3-executor")
    for key, value in (("dag_id", "nightlyexport-57d1ee814"), ("task_id", "loaddata-987aff04a")):
        pod["metadata"]["annotations"][key] = pod["metadata"]["labels"][key] = value
    task = identify(pod, "ns")
    assert not task.matches_dag("nightly export") and task.matches_dag("nightlyexport-*")
    assert not task.matches_task("load data") and task.matches_task("loaddata-*")


@pytest.mark.parametrize("key, value, match", [
    ("dag_id", "nightly export", '{dagIds: ["nightly export"]}'),
    ("task_id", "load data", '{dagIds: [example_dag], taskIds: ["load data"]}'),
])
def test_a_task_policy_for_an_id_with_spaces_reaches_its_executor_pods(key, value, match
                                                                           ) -> None:
    policies = policy_set(f"""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: TaskPolicy
        metadata: {{name: nightly}}
        spec:
          match: {match}
          template: {{spec: {{activeDeadlineSeconds: 3600}}}}
    """)
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][key] = value
    pod["metadata"]["labels"][key] = make_safe_label_value(value)
    assert mutate_pod(pod, policies, "data-airflow").pod["spec"]["activeDeadlineSeconds"] == 3600


# --- who may claim which identity ---------------------------------------------------------------


def test_an_untrusted_creator_never_gets_an_exemption_on_any_path(bundled) -> None:
    attack = BY_NAME["worker-forges-exempted-executor-pod"]
    pod = attack_pod(attack, "airflow-legacy")
    user = username(attack, "airflow-legacy")
    assert bundled.settings.creator_trusted("airflow-legacy", user, PodType.EXECUTOR) is False
    assert bundled.settings.creator_trusted("airflow-legacy", user, PodType.KPO) is True
    by_validation = validate_pod(pod, bundled, "airflow-legacy", user)
    assert not by_validation.allowed and by_validation.exempted == ()
    assert by_validation.creator_trusted is False
    from webhook.review import answer

    for hook in (VALIDATE, MUTATE_AND_VALIDATE):
        _status, body, decision = answer(hook, pod_review(pod, namespace="airflow-legacy",
                                                         username=user), bundled)
        assert body["response"]["allowed"] is False, hook
        assert "baseline: hostPathVolumes" in body["response"]["status"]["message"]
        assert "exempted" not in decision.extra
    # ...while the scheduler, its trusted creator, gets it: the exemption itself works.
    mutated = mutate_pod(pod, bundled, "airflow-legacy", SCHEDULER).pod
    trusted = validate_pod(mutated, bundled, "airflow-legacy", SCHEDULER)
    assert trusted.allowed and trusted.exempted == ("legacy-nfs-export",)


def test_dag_scoped_grants_never_match_a_kpo_pod_but_restrictions_do() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: OverridePolicy
        metadata: {name: generous-for-ml}
        spec:
          match: {dagIds: [ml_pipeline]}
          allowedFields: ["spec.containers[*].securityContext"]
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: ValidationPolicy
        metadata: {name: strict-for-ml}
        spec:
          match: {dagIds: [ml_pipeline]}
          mode: enforce
          podSecurity: {level: restricted, version: latest}
    """)
    kpo = identify(airflow_pod("airflow3-kpo"), "data-airflow")  # labels say ml_pipeline
    assert policies.override_policy_for(kpo) is None
    assert [p.name for p in policies.validation_policies_for(kpo)] == ["strict-for-ml"]
    executor = identify(labelled("airflow3-executor"), "data-airflow")
    assert policies.override_policy_for(executor) is None  # example_dag
    pod = airflow_pod("airflow3-executor")
    for field in ("labels", "annotations"):
        pod["metadata"][field]["dag_id"] = "ml_pipeline"
    assert policies.override_policy_for(identify(pod, "ns")).name == "generous-for-ml"


def test_a_label_selector_never_grants_to_an_airflow_pod() -> None:
    from webhook.airflow_pods import AirflowTask
    from webhook.policy.model import LabelSelector, Match

    match = Match(selector=LabelSelector(match_labels=(("team", "ml"),)))
    pod = labelled("airflow3-executor", team="ml")
    assert match.matches(identify(pod, "ns")) and not match.grants(identify(pod, "ns"))
    other = AirflowTask(PodType.OTHER, "ns", None, None, False, labels={"team": "ml"})
    assert Match(frozenset({PodType.OTHER}), selector=match.selector).grants(other)


@pytest.mark.parametrize("kind, extra", [
    ("Exemption", {"reason": "x", "rules": ["baseline"]}),
    ("TaskPolicy", {"template": {"spec": {"activeDeadlineSeconds": 1}}}),
    ("OverridePolicy", {"allowedFields": ["spec.nodeSelector"]}),
])
def test_a_grant_scoped_by_what_the_author_writes_is_a_load_error(kind, extra) -> None:
    from webhook.policy.compile import PolicyDocument, compile_policies

    def errors_for(match: dict) -> list[tuple[str, str]]:
        doc = PolicyDocument("p.yaml", 0, {
            "apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": kind,
            "metadata": {"name": "g"}, "spec": {"match": match, **extra}})
        _, errors = compile_policies([doc], "r")
        return [(e.path, e.reason.split(":")[0].split(",")[0]) for e in errors]

    assert errors_for({"dagIds": ["*"], "labelSelector": {"matchLabels": {"team": "ml"}}}) == [
        ("spec.match.labelSelector", "cannot scope this on executor or KPO pods")]
    assert errors_for({"podTypes": ["kpo"], "dagIds": ["ml_pipeline"]}) == [
        ("spec.match.dagIds", "a KPO pod's DAG and task ids are its author's choice and never "
         "select this")]
    assert errors_for({"podTypes": ["kpo"], "namespaces": ["ml"], "dagIds": ["*"]}) == []
    assert errors_for({"podTypes": ["executor"], "dagIds": ["ml_pipeline"]}) == []


# --- a policy may not drop what identifies the pod --------------------------------------------


@pytest.mark.parametrize("kind", ["PodTemplate", "Profile", "TaskPolicy"])
def test_a_policy_may_not_drop_labels_or_annotations(kind) -> None:
    from webhook.policy.compile import PolicyDocument, compile_policies

    extra = {"Profile": {"description": "x"}, "TaskPolicy": {"match": {"dagIds": ["*"]}}}
    for template, field in (({"metadata": None}, "metadata"),
                            ({"metadata": {"labels": None}}, "metadata.labels"),
                            ({"metadata": {"annotations": None}}, "metadata.annotations")):
        doc = PolicyDocument("p.yaml", 0, {
            "apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": kind,
            "metadata": {"name": "wipe"}, "spec": {"template": template, **extra.get(kind, {})}})
        policies, errors = compile_policies([doc], "r")
        assert policies is None
        assert [(e.path, e.reason.split(":")[0]) for e in errors] == [
            (f"spec.template.{field}", "may not be null")]


# --- malformed input is refused, never a crash ---------------------------------------------------


@pytest.mark.parametrize("text, reason", [
    ('{"spec": {"activeDeadlineSeconds": Infinity}}', "Infinity is not a JSON number"),
    ('{"spec": {"activeDeadlineSeconds": -Infinity}}', "-Infinity is not a JSON number"),
    ('{"spec": {"containers": [{"name": "base", "resources": {"limits": {"cpu": NaN}}}]}}',
     "NaN is not a JSON number"),
])
def test_json_nan_and_infinity_are_refused(text, reason) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_fragment_text(text)


@pytest.mark.parametrize("text, error", [
    ("spec: {activeDeadlineSeconds: .inf}",
     ("spec.activeDeadlineSeconds", "inf is not a number Kubernetes accepts (NaN and "
      "Infinity are not JSON)")),
    ("spec: {nodeSelector: {true: spot}}",
     ("spec.nodeSelector.True", "map keys must be strings, got boolean True (quote it)")),
    ("spec: {nodeSelector: {node-pool: true}}",
     ("spec.nodeSelector.node-pool", "must be a string, got boolean")),
    ("metadata: {annotations: {since: 2024-01-01}}",
     ("metadata.annotations.since", "must be a JSON value, got date '2024-01-01' (quote it)")),
    ("metadata: {annotations: {x: !!binary aGk=}}",
     ("metadata.annotations.x", "must be a JSON value, got bytes \"b'hi'\" (quote it)")),
])
def test_yaml_values_json_cannot_hold_are_refused(text, error) -> None:
    assert fragment_errors(parse_fragment_text(text)) == [error]


def test_an_impossible_yaml_date_is_refused_not_raised(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][P + "pod-override"] = "metadata: {annotations: {d: 2024-02-30}}"
    result = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    [refusal] = result.refusals
    assert refusal.malformed and "is neither JSON nor YAML" in refusal.message


@pytest.mark.parametrize("value", ["NaN", "Infinity", "inf", float("nan"), float("inf"), True])
def test_nan_infinity_and_booleans_are_no_quantity(value) -> None:
    with pytest.raises((ValueError, TypeError)):
        parse_quantity(value)


def test_quantities_round_up_to_nano_as_kubernetes_stores_them() -> None:
    from decimal import Decimal

    assert parse_quantity("0.1n") == Decimal("1e-9")
    assert parse_quantity("1.0000000001") == Decimal("1.000000001")
    assert parse_quantity("100m") == Decimal("0.1")
    assert parse_quantity("4Gi") == 4 * 2**30


def test_a_bound_compares_the_rounded_up_quantity() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: OverridePolicy
        metadata: {name: tiny}
        spec:
          allowedFields: ["spec.containers[*].resources"]
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: tiny}
        spec:
          resources:
            perContainer: {requests: {cpu: "0.000000001", memory: 1Ti}}
    """)
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][P + "cpu"] = "0.0000000011"  # stored as 2n, above 1n
    [refusal] = mutate_pod(pod, policies, "data-airflow").refusals
    assert "must be at most 0.000000001" in refusal.message
    assert refusal.rule == "envelope: resources"


def _review_with(annotations: dict) -> dict:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"].update(annotations)
    return pod_review(pod)


def test_a_crash_mutating_a_pod_with_overrides_is_a_denial() -> None:
    status, body, _ = last_resort(MUTATE, _review_with({P + "memory": "4Gi"}))
    response = body["response"]
    assert status == 200 and response["allowed"] is False
    assert response["status"]["code"] == 403
    assert (f"while applying {P}memory: pod not admitted, since its overrides could not be "
            f"checked ({INTERNAL_RULE})") in response["status"]["message"]


def test_a_crash_on_a_pod_without_overrides_fails_open_with_a_warning() -> None:
    # the webhook's own explain annotation is no request for an override
    _, body, _ = last_resort(MUTATE, _review_with({P + "applied": "revision=x"}))
    assert body["response"]["allowed"] is True
    assert "cluster defaults were not applied" in body["response"]["warnings"][0]
    _, body, _ = last_resort(MUTATE, _review_with({"example.com/x": "y"}))
    assert body["response"]["allowed"] is True


def test_a_crash_with_a_custom_prefix_is_a_denial() -> None:
    _, body, _ = last_resort(MUTATE, _review_with({"acme.io/memory": "4Gi"}), "acme.io/")
    assert body["response"]["allowed"] is False


def test_the_server_denies_when_mutation_crashes_on_a_pod_with_overrides(bundled,
                                                                         monkeypatch) -> None:
    from webhook import decide
    from webhook.policy.store import PolicyStore
    from webhook.serving.review_endpoints import ReviewEndpoints

    def crash(*args, **kwargs):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(decide, "mutate_pod", crash)
    store = PolicyStore.__new__(PolicyStore)
    monkeypatch.setattr(PolicyStore, "current", property(lambda self: bundled))
    endpoints = ReviewEndpoints.__new__(ReviewEndpoints)
    endpoints.store = store
    environ = {"CONTENT_TYPE": "application/json"}
    with_overrides = json.dumps(_review_with({P + "cpu": "1"})).encode()
    status, body, _, _ = endpoints.answer_request(MUTATE, environ, with_overrides)
    assert (status, body["response"]["allowed"]) == (200, False)
    without = json.dumps(_review_with({})).encode()
    status, body, _, _ = endpoints.answer_request(MUTATE, environ, without)
    assert (status, body["response"]["allowed"]) == (200, True)


def test_a_patch_never_holds_nan() -> None:
    from webhook.admission import encode_patch

    with pytest.raises(ValueError):
        encode_patch([{"op": "add", "path": "/spec/x", "value": float("nan")}])
    assert json.loads(base64.b64decode(encode_patch([{"op": "add", "path": "/a",
                                                      "value": 1.5}]))) == [
        {"op": "add", "path": "/a", "value": 1.5}]
