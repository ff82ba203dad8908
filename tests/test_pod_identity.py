"""Issue 15, the attacker's side: classification, what identifies a pod, the mutation's
invariants, malformed input, and the built-in plugins around the webhook.

Each attack of tests/e2e/security_scenarios.py is also run here against the offline core
(the same two calls kube-apiserver makes), so a failure there points at the cluster side.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from tests.e2e.offline_core import admit_offline
from tests.e2e.scenarios import denial_prefix, e2e_policies
from tests.e2e.security_scenarios import (
    ADMITTED,
    ATTACKS,
    BY_NAME,
    DENIED,
    PRIORITY_CLASS,
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
from webhook.airflow_pods import POD_IDENTITY_RULE, PodType, identify
from webhook.cluster.registration import selected_by_hooks
from webhook.kube.pod_fields import fragment_errors
from webhook.kube.quantity import parse_quantity
from webhook.mutation import mutate as mutate_module
from webhook.mutation.mutate import KEEP_IDENTITY_RULE, mutate_pod
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


def test_an_executor_marker_with_another_value_is_still_an_airflow_pod() -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["labels"]["kubernetes_executor"] = "yes"  # still selected: airflow-worker
    assert selected_by_hooks(pod)
    task = identify(pod, "ns")
    assert task.pod_type is PodType.KPO and task.identity_problems


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


# --- the mutation keeps what selects and identifies the pod --------------------------------------


@pytest.mark.parametrize("fragment, field", [
    ({"metadata": None}, "metadata"),
    ({"metadata": {"labels": None}}, "metadata.labels"),
    ({"metadata": {"annotations": None}}, "metadata.annotations"),
])
def test_overrides_may_not_drop_labels_or_annotations(bundled, fragment, field) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][P + "pod-override"] = json.dumps(fragment)
    result = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert [r.message for r in result.refusals] == [
        f"annotation {P}pod-override: {field}: may not be removed or replaced: it holds "
        "Airflow's labels and annotations; set single keys instead (Airflow-owned field)"]
    assert result.patch == []


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


def test_the_result_is_checked_whatever_produced_it(bundled, monkeypatch) -> None:
    """The invariant is judged on the mutated pod, not inferred from the request: with the
    guards before it broken, a mutation that drops the labels is refused, not admitted."""
    from webhook.mutation import overrides

    monkeypatch.setattr(overrides, "_owned", lambda path, task: None)
    monkeypatch.setattr(mutate_module, "_keep_airflow_metadata", lambda original, result: result)
    # an OverridePolicy that lets annotations set labels (the bundled one no longer does)
    [default] = bundled.override_policies
    labels_allowed = dataclasses.replace(bundled, override_policies=(dataclasses.replace(
        default, allowed_fields=(*default.allowed_fields, ("metadata", "labels"))),))
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][P + "pod-override"] = json.dumps({"metadata": {"labels": None}})
    result = mutate_pod(pod, labels_allowed, "data-airflow", SCHEDULER)
    assert not result.allowed and result.patch == []
    messages = [r.message for r in result.refusals]
    assert ("metadata.labels.airflow-worker: Airflow's own key would be removed by the "
            f"mutation ({KEEP_IDENTITY_RULE})") in messages
    assert ("metadata: the mutated pod would no longer be selected by the webhooks' "
            f"matchConditions ({KEEP_IDENTITY_RULE})") in messages


def test_a_mutation_that_changes_an_airflow_value_is_refused(bundled, monkeypatch) -> None:
    def relabel(original: dict, result: dict) -> dict:
        meta = {**result["metadata"], "labels": {**result["metadata"]["labels"],
                                                 "dag_id": "nfs_export"}}
        return {**result, "metadata": meta}

    monkeypatch.setattr(mutate_module, "_keep_airflow_metadata", relabel)
    result = mutate_pod(airflow_pod("airflow3-executor"), bundled, "data-airflow", SCHEDULER)
    assert [r.message for r in result.refusals] == [
        f"metadata.labels.dag_id: Airflow's own key would be changed by the mutation "
        f"({KEEP_IDENTITY_RULE})"]


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


# --- the built-in plugins around the webhook -----------------------------------------------------


def _as_apiserver_admits(pod: dict) -> dict:
    """What the Priority plugin wrote before any webhook ran (no class: priority 0)."""
    pod["spec"]["priority"] = 0
    pod["spec"]["preemptionPolicy"] = "PreemptLowerPriority"
    return pod


def test_a_priority_class_from_an_annotation_lets_the_plugin_recompute(bundled) -> None:
    pod = _as_apiserver_admits(airflow_pod("airflow3-executor"))
    pod["metadata"]["annotations"][P + "pod-override"] = json.dumps(
        {"spec": {"priorityClassName": PRIORITY_CLASS}})
    result = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert result.allowed
    assert {"op": "remove", "path": "/spec/priority"} in result.patch
    assert {"op": "remove", "path": "/spec/preemptionPolicy"} in result.patch
    assert result.pod["spec"]["priorityClassName"] == PRIORITY_CLASS


def test_a_priority_class_from_a_profile_lets_the_plugin_recompute() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Profile
        metadata: {name: urgent}
        spec:
          description: test
          template: {spec: {priorityClassName: airflow-urgent}}
    """)
    pod = _as_apiserver_admits(airflow_pod("airflow3-kpo"))
    pod["metadata"]["annotations"] = {P + "profiles": "urgent"}
    spec = mutate_pod(pod, policies, "data-airflow").pod["spec"]
    assert spec["priorityClassName"] == "airflow-urgent"
    assert "priority" not in spec and "preemptionPolicy" not in spec


def test_an_unchanged_priority_class_keeps_what_the_plugin_computed(bundled) -> None:
    pod = _as_apiserver_admits(airflow_pod("airflow3-executor"))
    pod["spec"]["priorityClassName"] = "airflow-batch"
    pod["spec"]["priority"] = 1000
    pod["metadata"]["annotations"][P + "memory"] = "1Gi"
    result = mutate_pod(pod, bundled, "data-airflow", SCHEDULER)
    assert result.pod["spec"]["priority"] == 1000
    assert not [op for op in result.patch if "priority" in op["path"].lower()]


def test_a_changed_runtime_class_drops_the_overhead_its_plugin_set() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: sandboxed}
        spec:
          template: {spec: {runtimeClassName: gvisor}}
          lockedFields: [spec.runtimeClassName]
    """)
    pod = airflow_pod("airflow3-executor")
    pod["spec"]["runtimeClassName"] = "runc"
    pod["spec"]["overhead"] = {"cpu": "10m"}
    spec = mutate_pod(pod, policies, "data-airflow").pod["spec"]
    assert spec["runtimeClassName"] == "gvisor" and "overhead" not in spec


def test_default_tolerations_from_the_apiserver_survive_a_profile(bundled) -> None:
    pod = airflow_pod("airflow3-executor")
    defaults = [{"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": 300} for k in ("not-ready", "unreachable")]
    pod["spec"]["tolerations"] = list(defaults)
    pod["metadata"]["annotations"][P + "profiles"] = "spot"
    tolerations = mutate_pod(pod, bundled, "data-airflow", SCHEDULER).pod["spec"]["tolerations"]
    assert tolerations[:2] == defaults and tolerations[2]["key"] == "spot"


def _with_token_volume(pod: dict) -> dict:
    """What the ServiceAccount plugin adds before any webhook runs."""
    pod["spec"].setdefault("volumes", []).append({"name": "kube-api-access-x7k2q", "projected": {
        "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt"}}]}})
    for c in pod["spec"]["containers"]:
        c.setdefault("volumeMounts", []).append({
            "name": "kube-api-access-x7k2q", "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
    return pod


def test_turning_automount_off_takes_back_the_token_the_plugin_mounted() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: no-token}
        spec:
          template: {spec: {automountServiceAccountToken: false}}
          lockedFields: [spec.automountServiceAccountToken]
    """)
    pod = _with_token_volume(airflow_pod("airflow3-kpo-xcom"))
    spec = mutate_pod(pod, policies, "data-airflow").pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert not [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    assert [v["name"] for v in spec["volumes"]] == ["xcom"]
    for c in spec["containers"]:
        assert not [m for m in c.get("volumeMounts", []) if m["name"].startswith("kube-api")]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "xcom",
                                                       "mountPath": "/airflow/xcom"}]


def test_the_token_volume_stays_when_automount_is_untouched(bundled) -> None:
    pod = _with_token_volume(airflow_pod("airflow3-executor"))
    pod["metadata"]["annotations"][P + "memory"] = "1Gi"
    spec = mutate_pod(pod, bundled, "data-airflow", SCHEDULER).pod["spec"]
    assert "kube-api-access-x7k2q" in [v["name"] for v in spec["volumes"]]
