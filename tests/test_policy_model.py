"""webhook/policy/model.py: which compiled policies reach which pod.

`Match.matches` scopes what restricts a pod (templates, validation policies, envelopes);
`Match.grants` scopes what gives a pod something (exemptions, task policies, override
policies) and counts only what the pod's author cannot choose: a KPO pod's ids and any
Airflow pod's labels are its author's, so they never select a grant.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from tests.support.pods import airflow_pod
from webhook.airflow_pods import AirflowTask, PodType, identify
from webhook.policy.model import (
    AIRFLOW_POD_TYPES,
    Bound,
    Envelope,
    Exemption,
    LabelRule,
    LabelRules,
    LabelSelector,
    Match,
    NameAllowlist,
    OverridePolicy,
    PodTemplate,
    PolicySet,
    Profile,
    ResourceBounds,
    Settings,
    Source,
    TaskPolicy,
    TrustedCreators,
    ValidationPolicy,
    matches_any,
)

SOURCE = Source("p.yaml", 0)


def executor(dag_id: str = "example_dag", task_id: str = "extract", **labels: str
             ) -> AirflowTask:
    """A stock executor pod of the scheduler (exact ids in annotations), in data-airflow."""
    pod = airflow_pod("airflow3-executor")
    for key, value in (("dag_id", dag_id), ("task_id", task_id)):
        pod["metadata"]["annotations"][key] = pod["metadata"]["labels"][key] = value
    pod["metadata"]["labels"].update(labels)
    return identify(pod, "data-airflow")


def kpo(**labels: str) -> AirflowTask:
    """A stock KPO pod (ml_pipeline.export_csv by its labels), in data-airflow."""
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["labels"].update(labels)
    return identify(pod, "data-airflow")


def other(**labels: str) -> AirflowTask:
    return AirflowTask(PodType.OTHER, "data-airflow", None, None, False, labels=labels)


UNMARKED = AirflowTask(PodType.KPO, "data-airflow", None, None, False, labels={},
                       unmarked=True)
# the same executor pod, its dag_id label rewritten by someone
FORGED = replace(executor(), identity_problems=(("metadata.labels.dag_id", "x", "y"),))
TEAM_ML = LabelSelector(match_labels=(("team", "ml"),))


# --- what restricts a pod: Match.matches ----------------------------------------------------------


@pytest.mark.parametrize("match, task, matched", [
    (Match(), executor(), True),
    (Match(), kpo(), True),
    (Match(), other(), False),  # a foreign pod only through an explicit label selector
    (Match(frozenset({PodType.OTHER})), other(), False),
    (Match(frozenset({PodType.OTHER}), selector=LabelSelector()), other(), True),
    (Match(selector=TEAM_ML), other(team="ml"), False),  # podTypes still say executor, kpo
    (Match(frozenset({PodType.EXECUTOR})), kpo(), False),
    (Match(frozenset({PodType.KPO})), kpo(), True),
    (Match(namespaces=("data-*",)), kpo(), True),
    (Match(namespaces=("default", "data-airflow")), kpo(), True),
    (Match(namespaces=("data",)), kpo(), False),
    (Match(dag_ids=("example_dag",)), executor(), True),
    (Match(dag_ids=("other", "example_*")), executor(), True),
    (Match(dag_ids=("other",)), executor(), False),
    (Match(task_ids=("extract",)), executor(), True),
    (Match(task_ids=("load", "ex*")), executor(), True),
    (Match(task_ids=("load",)), executor(), False),
    (Match(dag_ids=("example_dag",), task_ids=("load",)), executor(), False),
    (Match(selector=TEAM_ML), kpo(team="ml"), True),
    (Match(selector=TEAM_ML), kpo(team="web"), False),
    (Match(selector=TEAM_ML), UNMARKED, False),
    (Match(selector=LabelSelector()), replace(kpo(), labels=None), True),
])
def test_a_restriction_reaches_the_pods_its_match_names(match, task, matched) -> None:
    assert match.matches(task) is matched


# --- what gives a pod something: Match.grants ---------------------------------------------------


@pytest.mark.parametrize("match, task, granted", [
    # an executor pod's exact ids, written by the scheduler, select grants
    (Match(dag_ids=("example_dag",)), executor(), True),
    (Match(task_ids=("extract",)), executor(), True),
    (Match(dag_ids=("other",)), executor(), False),  # no match, no grant
    # a KPO pod's ids are its author's: a DAG or task scope never grants to it ...
    (Match(dag_ids=("ml_pipeline",)), kpo(), False),
    (Match(task_ids=("export_csv",)), kpo(), False),
    (Match(dag_ids=("*",), task_ids=("export_csv",)), kpo(), False),
    (Match(dag_ids=("ml_*",)), kpo(), False),
    # ... while a grant for every DAG and task does (scoped by pod type and namespace only)
    (Match(dag_ids=("*",)), kpo(), True),
    (Match(dag_ids=("*",), task_ids=("*",)), kpo(), True),
    (Match(namespaces=("data-airflow",)), kpo(), True),
    # an executor pod whose ids contradict each other gets no scoped grant either
    (Match(dag_ids=("example_dag",)), FORGED, False),
    (Match(), FORGED, True),
    # labels are written by pod_override and KPO `labels=`: never a grant on an Airflow pod
    (Match(selector=TEAM_ML), executor(team="ml"), False),
    (Match(selector=TEAM_ML), kpo(team="ml"), False),
    # a foreign pod the admin selected by its labels gets what was granted to it
    (Match(frozenset({PodType.OTHER}), selector=TEAM_ML), other(team="ml"), True),
    (Match(frozenset({PodType.OTHER}), selector=TEAM_ML), other(team="web"), False),
    # a pod one of Airflow's accounts wrote without markers is its author's alone
    (Match(), UNMARKED, False),
    (Match(dag_ids=("*",)), UNMARKED, False),
])
def test_a_grant_reaches_only_pods_whose_scope_its_author_cannot_choose(match, task, granted
                                                                       ) -> None:
    assert match.grants(task) is granted


# --- label selectors and name globs ---------------------------------------------------------------


@pytest.mark.parametrize("selector, matched", [
    (LabelSelector(), True),
    (LabelSelector(match_labels=(("team", "ml"), ("tier", "gpu"))), True),
    (LabelSelector(match_labels=(("team", "ml"), ("tier", "cpu"))), False),
    (LabelSelector(match_labels=(("owner", ""),)), False),  # missing is not empty
    (LabelSelector(match_expressions=(("team", "In", ("web", "ml")),)), True),
    (LabelSelector(match_expressions=(("team", "In", ("web",)),)), False),
    (LabelSelector(match_expressions=(("owner", "In", ("",)),)), False),
    (LabelSelector(match_expressions=(("team", "NotIn", ("web",)),)), True),
    (LabelSelector(match_expressions=(("team", "NotIn", ("ml",)),)), False),
    (LabelSelector(match_expressions=(("owner", "NotIn", ("x",)),)), True),
    (LabelSelector(match_expressions=(("team", "Exists", ()),)), True),
    (LabelSelector(match_expressions=(("owner", "Exists", ()),)), False),
    (LabelSelector(match_expressions=(("owner", "DoesNotExist", ()),)), True),
    (LabelSelector(match_expressions=(("team", "DoesNotExist", ()),)), False),
    (LabelSelector(match_expressions=(("team", "Exists", ()), ("tier", "In", ("cpu",)))),
     False),
])
def test_a_label_selector_reads_as_kubernetes_reads_it(selector, matched) -> None:
    assert selector.matches({"team": "ml", "tier": "gpu"}) is matched


@pytest.mark.parametrize("name, patterns, matched", [
    ("airflow-urgent", ("airflow-*",), True),
    ("airflow-urgent", ("system-*", "airflow-urgent"), True),
    ("my-airflow-urgent", ("airflow-*",), False),  # the whole name, not a prefix or part
    ("airflow-urgent-2", ("airflow-urgent",), False),
    ("Airflow-urgent", ("airflow-*",), False),  # case counts
    ("anything", (), False),
])
def test_a_name_matches_any_glob_as_a_whole(name, patterns, matched) -> None:
    assert matches_any(name, patterns) is matched


@pytest.mark.parametrize("name, admitted", [
    ("airflow-batch", True), ("airflow-scheduler-critical", False), ("system-node", False)])
def test_a_forbidden_name_wins_over_an_allowed_one(name, admitted) -> None:
    allowlist = NameAllowlist(allowed=("airflow-*",), forbidden=("*scheduler*",))
    assert allowlist.admits(name) is admitted


def test_resources_listed_in_either_bound_are_bounded() -> None:
    one = Bound(Decimal(1), "1")
    bounds = ResourceBounds(per_container={"requests": {"cpu": one}, "limits": {"memory": one}},
                            per_pod={"requests": {"nvidia.com/gpu": one}})
    assert bounds.listed("requests") == {"cpu", "nvidia.com/gpu"}
    assert bounds.listed("limits") == {"memory"}
    assert bounds.listed("claims") == frozenset()


def test_label_rules_know_the_keys_they_forbid() -> None:
    rules = LabelRules(forbidden=(LabelRule("app.kubernetes.io/*"), LabelRule("team", ("x",))))
    assert rules.keys == ("app.kubernetes.io/*", "team")


@pytest.mark.parametrize("expires, today, active", [
    (None, date(2099, 1, 1), True),
    (date(2026, 12, 31), date(2026, 12, 30), True),
    (date(2026, 12, 31), date(2026, 12, 31), True),  # through its last day
    (date(2026, 12, 31), date(2027, 1, 1), False),
])
def test_an_exemption_holds_through_the_day_it_expires(expires, today, active) -> None:
    assert Exemption("e", Match(), ("*",), "why", expires, SOURCE).active(today) is active


# --- who Airflow is, and whom it trusts -----------------------------------------------------------

SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
WORKER = "system:serviceaccount:airflow:airflow-worker"
SETTINGS = Settings(
    trusted_creators=(
        TrustedCreators(("data-*", "airflow"), (SCHEDULER,), frozenset({PodType.EXECUTOR})),
        TrustedCreators(("data-*", "airflow"), (WORKER, SCHEDULER), frozenset({PodType.KPO})),
        TrustedCreators(("sandbox",), ()),
    ),
    airflow_accounts=("system:serviceaccount:airflow:airflow-dag-processor",
                      "system:serviceaccount:airflow:*-api-server"))


def test_airflows_usernames_are_every_creator_and_account_once_in_order() -> None:
    assert SETTINGS.airflow_usernames == (
        SCHEDULER, WORKER, "system:serviceaccount:airflow:airflow-dag-processor",
        "system:serviceaccount:airflow:*-api-server")


@pytest.mark.parametrize("username, airflow", [
    (SCHEDULER, True), (WORKER, True),
    ("system:serviceaccount:airflow:airflow-dag-processor", True),
    ("system:serviceaccount:airflow:airflow-api-server", True),
    ("system:serviceaccount:team-a:airflow-worker", False),
    (None, False), ("", False),
])
def test_an_airflow_identity_is_one_the_settings_name(username, airflow) -> None:
    assert SETTINGS.is_airflow_identity(username) is airflow


@pytest.mark.parametrize("namespace, username, pod_type, trusted", [
    ("data-airflow", SCHEDULER, PodType.EXECUTOR, True),
    ("data-airflow", SCHEDULER, PodType.KPO, True),
    ("data-airflow", WORKER, PodType.KPO, True),
    ("data-airflow", WORKER, PodType.EXECUTOR, False),  # the worker never makes executor pods
    ("data-airflow", WORKER, None, True),  # any pod type
    ("airflow", "system:serviceaccount:team-a:ci-bot", None, False),
    ("sandbox", SCHEDULER, None, False),  # a rule that trusts no one
    ("default", SCHEDULER, PodType.EXECUTOR, None),  # no rule: the Settings do not say
])
def test_a_creator_is_trusted_only_by_a_rule_for_its_namespace_and_pod_type(
        namespace, username, pod_type, trusted) -> None:
    assert SETTINGS.creator_trusted(namespace, username, pod_type) is trusted


def test_a_rule_without_namespaces_covers_every_namespace() -> None:
    settings = Settings(trusted_creators=(TrustedCreators((), ("system:serviceaccount:*:ci",)),))
    assert settings.creator_trusted("anywhere", "system:serviceaccount:team-a:ci") is True
    assert settings.creator_trusted("anywhere", "system:serviceaccount:team-a:cd") is False
    assert TrustedCreators((), ()).pod_types == AIRFLOW_POD_TYPES


# --- a policy set answers by pod ------------------------------------------------------------------


def _template(name: str, match: Match) -> PodTemplate:
    return PodTemplate(name, match, 0, {}, (), SOURCE)


def _task_policy(name: str, match: Match) -> TaskPolicy:
    return TaskPolicy(name, match, {}, SOURCE)


def _validation(name: str, match: Match) -> ValidationPolicy:
    return ValidationPolicy(name, match, "enforce", "baseline", "latest", {}, SOURCE)


def _envelope(name: str, match: Match) -> Envelope:
    return Envelope(name, match, "enforce", None, None, None, None, None, None, False, SOURCE)


def _override(name: str, match: Match) -> OverridePolicy:
    return OverridePolicy(name, match, (), (), SOURCE)


ML = Match(dag_ids=("ml_pipeline",))
ANY_DAG = Match(dag_ids=("*",))
EXAMPLE = Match(dag_ids=("example_dag",))
SET = PolicySet(
    revision="r",
    templates=(_template("all", Match()), _template("kpo", Match(frozenset({PodType.KPO})))),
    # compile indexes a task policy under each exact dag id, globs go to the short list
    task_policies_exact={"example_dag": (_task_policy("z-example", EXAMPLE),
                                         _task_policy("other-dag", Match(dag_ids=("x",)))),
                         "ml_pipeline": (_task_policy("ml", ML),)},
    task_policies_glob=(_task_policy("b-every", ANY_DAG), _task_policy("a-every", ANY_DAG)),
    override_policies=(_override("for-ml", ML), _override("for-example", EXAMPLE),
                       _override("default", Match())),
    validation_policies=(_validation("strict-ml", ML), _validation("all", Match())),
    envelopes=(_envelope("ml", ML), _envelope("executors",
                                              Match(frozenset({PodType.EXECUTOR})))),
    exemptions=(
        Exemption("expired", Match(), ("*",), "x", date(2020, 1, 1), SOURCE),
        Exemption("example", EXAMPLE, ("*",), "x", None, SOURCE),
        Exemption("ml", ML, ("*",), "x", None, SOURCE)),
)
TODAY = date(2026, 12, 4)


def test_an_executor_pod_gets_its_dags_grants_and_every_restriction_that_names_it() -> None:
    task = executor()
    assert [t.name for t in SET.templates_for(task)] == ["all"]
    assert [p.name for p in SET.task_policies_for(task)] == ["a-every", "b-every", "z-example"]
    assert SET.override_policy_for(task).name == "for-example"
    assert [p.name for p in SET.validation_policies_for(task)] == ["all"]
    assert [e.name for e in SET.envelopes_for(task)] == ["executors"]
    assert [e.name for e in SET.exemptions_for(task, TODAY)] == ["example"]
    assert [e.name for e in SET.exemptions_for(task, date(2019, 1, 1))] == ["expired",
                                                                           "example"]


def test_a_kpo_pod_naming_a_dag_gets_its_restrictions_but_not_its_grants() -> None:
    task = kpo()  # ml_pipeline, by its author's labels
    assert [t.name for t in SET.templates_for(task)] == ["all", "kpo"]
    assert [p.name for p in SET.task_policies_for(task)] == ["a-every", "b-every"]
    assert SET.override_policy_for(task).name == "default"
    assert [p.name for p in SET.validation_policies_for(task)] == ["strict-ml", "all"]
    assert [e.name for e in SET.envelopes_for(task)] == ["ml"]
    assert SET.exemptions_for(task, TODAY) == []


def test_a_pod_of_an_unlisted_dag_or_none_gets_only_the_policies_for_every_dag() -> None:
    for task in (replace(kpo(), dag_id=None), executor(dag_id="nightly")):
        assert [p.name for p in SET.task_policies_for(task)] == ["a-every", "b-every"]
    assert PolicySet("r").override_policy_for(task) is None


def test_only_airflow_pods_and_foreign_pods_a_selector_names_are_covered() -> None:
    assert SET.covers(kpo()) and SET.covers(executor())
    assert PolicySet("r").covers(UNMARKED)  # an Airflow pod: judged even with no policy
    assert not SET.covers(other(team="ml"))
    foreign = Match(frozenset({PodType.OTHER}), selector=TEAM_ML)
    profile = Profile("p", "", foreign, {}, SOURCE)
    for policies in (
            PolicySet("r", templates=(_template("t", foreign),)),
            PolicySet("r", profiles={"p": profile}),
            PolicySet("r", task_policies_glob=(_task_policy("t", foreign),)),
            PolicySet("r", task_policies_exact={"x": (_task_policy("t", foreign),)}),
            PolicySet("r", override_policies=(_override("o", foreign),)),
            PolicySet("r", validation_policies=(_validation("v", foreign),)),
            PolicySet("r", envelopes=(_envelope("e", foreign),))):
        assert policies.covers(other(team="ml")), policies
        assert not policies.covers(other(team="web")), policies
