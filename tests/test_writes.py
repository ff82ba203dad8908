"""Later writes to live pods by Airflow's accounts (webhook.validation.writes): what a task
holding the worker's token could change after admission, and Airflow's own bookkeeping, which
must always pass."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.support.pods import admitted_pod
from tests.support.policies import policy_set
from webhook.policy.model import PolicySet
from webhook.validation.writes import judge_connect, judge_write

NS = "airflow"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
WORKER = "system:serviceaccount:airflow:airflow-worker"
DAG_PROCESSOR = "system:serviceaccount:airflow:airflow-dag-processor"


def changed(pod: dict, change: Callable[[dict], None]) -> dict:
    new = copy.deepcopy(pod)
    change(new)
    return new


def labels(**values: str) -> Callable[[dict], None]:
    return lambda p: p["metadata"]["labels"].update(values)


@pytest.fixture
def executor() -> dict:
    return admitted_pod("airflow3-executor")


@pytest.fixture
def kpo() -> dict:
    return admitted_pod("airflow3-kpo")


# --- Airflow's own writes pass -------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "user", "change"), [
    # KubernetesPodOperator cleanup marks the pod it has looked at.
    ("kpo", WORKER, labels(already_checked="True")),
    # The executor marks a finished pod, and a revoked one.
    ("executor", SCHEDULER, labels(airflow_executor_done="True")),
    ("executor", SCHEDULER, labels(airflow_pod_revoked="True")),
    # A new scheduler adopts the executor pods of the one before it.
    ("executor", SCHEDULER, labels(**{"airflow-worker": "42"})),
    # Newer providers' adoption also writes the TI's UUID onto a pod that lacks it.
    ("executor", SCHEDULER, lambda p: p["metadata"]["annotations"].update(
        task_instance_id="0199a3c5-7e57-7a1a-9c3e-5a2b7f0c4d11")),
    # Finalizers removed, an unrelated label added.
    ("kpo", WORKER, lambda p: p["metadata"].update(finalizers=[])),
    ("kpo", WORKER, labels(team="data")),
])
def test_airflow_bookkeeping_passes(request, bundled: PolicySet, fixture: str, user: str,
                                    change: Callable[[dict], None]) -> None:
    old = request.getfixturevalue(fixture)
    result = judge_write(old, changed(old, change), bundled, NS, user)
    assert result.allowed, result.message
    assert result.rules_violated == ()


def test_a_pod_admitted_earlier_is_not_re_denied_for_what_it_already_had(
        bundled: PolicySet, kpo: dict) -> None:
    # Admitted under an older policy set: privileged. Airflow's label patch still passes.
    old = changed(kpo, lambda p: p["spec"]["containers"][0].setdefault(
        "securityContext", {}).update(privileged=True))
    result = judge_write(old, changed(old, labels(already_checked="True")), bundled, NS, WORKER)
    assert result.allowed, result.message


# --- what a task could change after admission is denied, naming the rule -----------------


def test_a_keyless_toleration_added_is_denied(bundled: PolicySet, kpo: dict) -> None:
    new = changed(kpo, lambda p: p["spec"].setdefault("tolerations", []).append(
        {"operator": "Exists"}))
    result = judge_write(kpo, new, bundled, NS, WORKER)
    assert not result.allowed
    assert result.rules_violated == ("envelope: placement",)
    assert "a key-less toleration tolerates every taint" in result.message
    assert result.message.startswith("pod ")
    assert " update violates 1 rule(s): " in result.message


IMAGES = policy_set("""
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: ValidationPolicy
    metadata: {name: registries}
    spec:
      mode: enforce
      rules:
        images: {allowedRegistries: [registry.example.com/]}
""")


def test_an_image_swap_is_held_to_the_image_rules_of_a_create(kpo: dict) -> None:
    old = changed(kpo, lambda p: p["spec"]["containers"][0].update(
        image="registry.example.com/etl:1"))
    assert judge_write(old, changed(old, lambda p: p["spec"]["containers"][0].update(
        image="registry.example.com/etl:2")), IMAGES, NS, WORKER).allowed
    result = judge_write(old, changed(old, lambda p: p["spec"]["containers"][0].update(
        image="evil.io/miner:1")), IMAGES, NS, WORKER)
    assert not result.allowed
    assert result.rules_violated == ("airflow: images",)


def test_a_privileged_ephemeral_container_is_denied(bundled: PolicySet, kpo: dict) -> None:
    new = changed(kpo, lambda p: p["spec"].update(ephemeralContainers=[{
        "name": "debug", "image": "busybox:1.36",
        "securityContext": {"privileged": True, "seccompProfile": {"type": "Unconfined"}}}]))
    result = judge_write(kpo, new, bundled, NS, WORKER, "ephemeralcontainers")
    assert not result.allowed
    assert "spec.ephemeralContainers[debug].securityContext.privileged must be unset or " \
           "false, got true (baseline: privileged)" in result.message


def test_a_resize_past_the_envelope_is_denied(bundled: PolicySet, kpo: dict) -> None:
    def more_cpu(pod: dict) -> None:
        resources = pod["spec"]["containers"][0]["resources"]
        resources.setdefault("requests", {})["cpu"] = "512"
        resources.setdefault("limits", {})["cpu"] = "512"

    new = changed(kpo, more_cpu)
    result = judge_write(kpo, new, bundled, NS, WORKER, "resize")
    assert not result.allowed
    assert result.violations["enforce"][0].rule == "envelope: resources"
    assert {v.rule for v in result.violations["enforce"]} == {"envelope: resources"}


@pytest.mark.parametrize("change", [
    # A KPO pod relabelled as another DAG's executor pod.
    labels(kubernetes_executor="True", **{"airflow-worker": "1"}, dag_id="payroll"),
    labels(dag_id="payroll"),
    lambda p: p["metadata"]["labels"].pop("kubernetes_pod_operator"),
])
def test_relabelling_a_pods_identity_is_denied(bundled: PolicySet, kpo: dict,
                                               change: Callable[[dict], None]) -> None:
    result = judge_write(kpo, changed(kpo, change), bundled, NS, WORKER)
    assert not result.allowed
    assert "airflow: ownedMetadata" in result.rules_violated
    assert "after the pod is created: Airflow's own key" in result.message


def test_only_an_executor_creator_rewrites_airflow_worker(bundled: PolicySet,
                                                          executor: dict) -> None:
    new = changed(executor, labels(**{"airflow-worker": "42"}))
    result = judge_write(executor, new, bundled, NS, WORKER)
    assert not result.allowed
    assert result.message.endswith(
        "metadata.labels.airflow-worker must stay '3' after the pod is created: Airflow's own "
        "key (only an account trusted to create executor pods rewrites it, when it adopts an "
        "executor pod), got \"42\" (airflow: ownedMetadata)")


@pytest.mark.parametrize(("user", "before"), [
    (WORKER, None),  # a task cannot write it, even once
    (SCHEDULER, "0199a3c5-7e57-7a1a-9c3e-5a2b7f0c4d11"),  # nor may adoption rewrite it
])
def test_task_instance_id_is_written_once_by_an_adopting_scheduler(
        bundled: PolicySet, executor: dict, user: str, before: str | None) -> None:
    old = copy.deepcopy(executor)
    if before is not None:
        old["metadata"]["annotations"]["task_instance_id"] = before
    new = changed(old, lambda p: p["metadata"]["annotations"].update(task_instance_id="other"))
    result = judge_write(old, new, bundled, NS, user)
    assert result.rules_violated == ("airflow: ownedMetadata",)
    assert "metadata.annotations.task_instance_id must" in result.message


def test_the_mirror_pod_annotation_is_not_a_writers_to_add(bundled: PolicySet,
                                                           kpo: dict) -> None:
    new = changed(kpo, lambda p: p["metadata"]["annotations"].update(
        {"kubernetes.io/config.mirror": "x"}))
    result = judge_write(kpo, new, bundled, NS, WORKER)
    assert not result.allowed
    assert result.rules_violated == ("airflow: ownedMetadata",)
    assert ("metadata.annotations.kubernetes.io/config.mirror must not be added or removed: "
            "only the kubelet writes it, on the mirror of a static pod; the hooks skip such "
            "pods and the kubelet stops managing a pod that carries it, got \"x\" "
            "(airflow: ownedMetadata)") in result.message


def test_the_webhooks_own_annotations_do_not_change(bundled: PolicySet, kpo: dict) -> None:
    new = changed(kpo, lambda p: p["metadata"]["annotations"].update(
        {"airflow-pod-webhook.io/applied": "nothing"}))
    result = judge_write(kpo, new, bundled, NS, WORKER)
    assert result.rules_violated == ("airflow: ownedMetadata",)
    assert "the webhook's record of what it applied" in result.message


GATED = policy_set("""
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Settings
    metadata: {name: settings}
    spec: {nodePoolLabel: pool}
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: gates}
    spec:
      mode: enforce
      placement: {nodePools: [batch]}
      schedulingGates: {allowed: [example.com/quota]}
""")


def test_a_pool_changed_while_gated_then_the_gate_removed_is_denied(kpo: dict) -> None:
    gated = changed(kpo, lambda p: p["spec"].update(
        schedulingGates=[{"name": "example.com/quota"}], nodeSelector={"pool": "batch"}))
    moved = changed(gated, lambda p: p["spec"]["nodeSelector"].update(
        {"pool": "control-plane", "kubernetes.io/hostname": "master-0"}))
    result = judge_write(gated, moved, GATED, NS, WORKER)
    assert not result.allowed
    assert result.message.endswith(
        'update violates 1 rule(s): spec.nodeSelector.pool must be one of the allowed node '
        'pools (batch), got "control-plane" (envelope: placement); '
        'spec.nodeSelector[kubernetes.io/hostname] must select nodes only by pool or an '
        'allowed label (none), not kubernetes.io/hostname, got "master-0" (envelope: '
        'placement)')
    # Whatever the pod holds when its last gate goes is judged again, old or new.
    ungated = changed(moved, lambda p: p["spec"].pop("schedulingGates"))
    result = judge_write(moved, ungated, GATED, NS, WORKER)
    assert not result.allowed
    assert 'spec.nodeSelector.pool must be one of the allowed node pools' in result.message
    fine = changed(gated, lambda p: p["spec"].pop("schedulingGates"))
    assert judge_write(gated, fine, GATED, NS, WORKER).allowed


def test_a_gate_outside_the_allowlist_is_refused_at_create(kpo: dict) -> None:
    from webhook.validation.validate import validate_pod

    pod = changed(kpo, lambda p: p["spec"].update(schedulingGates=[{"name": "evil.io/x"}],
                                                  nodeSelector={"pool": "batch"}))
    result = validate_pod(pod, GATED, NS, WORKER)
    assert result.rules_violated == ("envelope: schedulingGates",)


def test_bundled_envelope_allows_no_scheduling_gate(bundled: PolicySet, kpo: dict) -> None:
    from webhook.validation.validate import validate_pod

    pod = changed(kpo, lambda p: p["spec"].update(schedulingGates=[{"name": "x.io/y"}]))
    result = validate_pod(pod, bundled, NS, WORKER)
    assert not result.allowed
    assert "spec.schedulingGates[0].name must be one of (none allowed)" in result.message


def test_airflow_never_binds_pods(bundled: PolicySet) -> None:
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "etl-1"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "control-plane-0"}}
    result = judge_write(None, binding, bundled, NS, WORKER, "binding")
    assert not result.allowed
    assert result.message == (
        "pod etl-1 update violates 1 rule(s): binding must be left to the kube-scheduler: "
        "Airflow's accounts never bind pods to nodes, got \"control-plane-0\" "
        "(airflow: binding)")


def test_an_unmarked_pod_is_judged_as_the_least_trusted_airflow_pod(bundled: PolicySet
                                                                    ) -> None:
    old = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": NS},
           "spec": {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "image": "busybox:1.36",
                                    "resources": {"limits": {"memory": "1Gi"}}}]}}
    new = changed(old, lambda p: p["spec"].update(tolerations=[{"operator": "Exists"}]))
    result = judge_write(old, new, bundled, NS, DAG_PROCESSOR)
    assert result.task.unmarked and not result.allowed
    assert result.rules_violated == ("envelope: placement",)


# --- pods Airflow's accounts could never have created: only their metadata may change -------

# The chart's scheduler pod, as its ReplicaSet creates it in Airflow's namespace: the
# scheduler's account, Airflow's own Secrets, the labels its Services select. The worker's
# Role lets every task patch it.
SCHEDULER_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "airflow-scheduler-7d9f-abcde", "namespace": NS,
                 "labels": {"tier": "airflow", "component": "scheduler", "release": "airflow"}},
    "spec": {"serviceAccountName": "airflow-scheduler",
             "containers": [{"name": "scheduler", "image": "apache/airflow:3.0.2",
                             "env": [{"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                                      "valueFrom": {"secretKeyRef": {
                                          "name": "airflow-metadata", "key": "connection"}}}]}]},
}
STANDING = ("spec must not change on a pod that already breaks enforced rules (envelope: "
            "labels, envelope: limits, envelope: lockedFields, envelope: secrets, envelope: "
            "serviceAccountNames): Airflow's accounts may change only its labels, annotations "
            "and finalizers, got [\"{}\"] (airflow: standingViolations)")


def test_a_task_cannot_swap_the_schedulers_image(bundled: PolicySet) -> None:
    # The new image runs as the scheduler, with its token and the metadata connection: no
    # new violation, but the pod was never the worker's to change.
    new = changed(SCHEDULER_POD, lambda p: p["spec"]["containers"][0].update(
        image="ghcr.io/acme/export:0.9.1"))
    result = judge_write(SCHEDULER_POD, new, bundled, NS, WORKER)
    assert not result.allowed
    assert result.rules_violated == ("airflow: standingViolations",)
    assert result.message == ("pod airflow-scheduler-7d9f-abcde update violates 1 rule(s): "
                              + STANDING.format("containers"))


def test_a_task_cannot_debug_into_the_scheduler(bundled: PolicySet) -> None:
    # An ephemeral container in the scheduler's process namespace reads its environment.
    new = changed(SCHEDULER_POD, lambda p: p["spec"].update(ephemeralContainers=[{
        "name": "debug", "image": "busybox:1.36", "targetContainerName": "scheduler",
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}}}]))
    result = judge_write(SCHEDULER_POD, new, bundled, NS, WORKER, "ephemeralcontainers")
    assert not result.allowed
    assert STANDING.format("ephemeralContainers") in result.message


def test_the_metadata_of_such_a_pod_is_still_judged_as_any_write(bundled: PolicySet) -> None:
    # Labels, annotations and finalizers: what Airflow itself writes to live pods.
    new = changed(SCHEDULER_POD, lambda p: p["metadata"].update(
        finalizers=["example.com/keep"], annotations={"note": "seen"}))
    result = judge_write(SCHEDULER_POD, new, bundled, NS, WORKER)
    assert result.allowed, result.message


# --- commands run in a container (pods/exec, pods/attach) ------------------------------------


def test_kpo_reading_its_xcom_sidecar_passes(bundled: PolicySet) -> None:
    options = {"kind": "PodExecOptions", "container": "airflow-xcom-sidecar",
               "command": ["cat", "/airflow/xcom/return.json"], "stdout": True}
    result = judge_connect(options, "kpo-1", bundled, NS, WORKER, "exec")
    assert (result.allowed, result.rules_violated) == (True, ())


@pytest.mark.parametrize(("subresource", "container", "shown"), [
    ("exec", "scheduler", '"scheduler"'),  # the scheduler pod's environment and token
    ("exec", None, "<unset>"),  # kubectl exec without -c: the pod's default container
    ("attach", "airflow-xcom-sidecar", '"airflow-xcom-sidecar"'),  # Airflow never attaches
])
def test_any_other_command_in_a_pod_is_refused(bundled: PolicySet, subresource: str,
                                               container: str | None, shown: str) -> None:
    options = {"kind": "PodExecOptions", "command": ["env"]}
    if container is not None:
        options["container"] = container
    result = judge_connect(options, "airflow-scheduler-0", bundled, NS, WORKER, subresource)
    assert result.rules_violated == ("airflow: exec",)
    assert result.message == (
        f"pod airflow-scheduler-0 {subresource} violates 1 rule(s): {subresource}.container "
        "must be airflow-xcom-sidecar: Airflow's accounts run commands only in a "
        "KubernetesPodOperator's XCom sidecar, never in another container (a task holding "
        "the worker's token could read the scheduler's environment and token), got "
        f"{shown} (airflow: exec)")
