"""webhook/mutation/pod_invariants.py: what the mutation takes back so that kube-apiserver,
which validates the mutated pod before any validating webhook, never answers a DAG author's pod
with a confusing 422, and what the built-in admission plugins derived before the webhook ran.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.security_scenarios import PRIORITY_CLASS
from tests.support.pods import airflow_pod
from tests.support.policies import policy_set
from webhook.mutation.mutate import mutate_pod
from webhook.mutation.pod_invariants import (
    keep_limit_only_guarantees,
    keep_pod_valid,
    let_plugins_recompute,
)

P = "airflow-pod-webhook.io/"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"


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


# A template that turns the token off and locks it off.
NO_TOKEN = policy_set("""
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: PodTemplate
    metadata: {name: no-token}
    spec:
      template: {spec: {automountServiceAccountToken: false}}
      lockedFields: [spec.automountServiceAccountToken]
""")


def test_turning_automount_off_takes_back_the_token_the_plugin_mounted() -> None:
    policies = NO_TOKEN
    pod = _with_token_volume(airflow_pod("airflow3-kpo-xcom"))
    spec = mutate_pod(pod, policies, "data-airflow").pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert not [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    assert [v["name"] for v in spec["volumes"]] == ["xcom"]
    for c in spec["containers"]:
        assert not [m for m in c.get("volumeMounts", []) if m["name"].startswith("kube-api")]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "xcom",
                                                       "mountPath": "/airflow/xcom"}]


def test_a_kpo_pod_asking_for_its_token_loses_it_under_a_lock_that_turns_it_off() -> None:
    policies = NO_TOKEN
    pod = _with_token_volume(airflow_pod("airflow3-kpo-xcom"))
    # KubernetesPodOperator(automount_service_account_token=True)
    pod["spec"]["automountServiceAccountToken"] = True
    result = mutate_pod(pod, policies, "data-airflow")
    assert result.allowed
    assert [v["name"] for v in result.pod["spec"]["volumes"]] == ["xcom"]
    assert {"op": "replace", "path": "/spec/automountServiceAccountToken", "value": False
            } in result.patch


def test_the_token_volume_stays_when_automount_is_untouched(bundled) -> None:
    pod = _with_token_volume(airflow_pod("airflow3-executor"))
    pod["metadata"]["annotations"][P + "memory"] = "1Gi"
    spec = mutate_pod(pod, bundled, "data-airflow", SCHEDULER).pod["spec"]
    assert "kube-api-access-x7k2q" in [v["name"] for v in spec["volumes"]]


# --- a default never makes the pod invalid (keep_pod_valid) --------------------------------------


def _pod(*containers: dict, **spec: object) -> dict:
    """A pod as kube-apiserver sends it; no initContainers key unless given."""
    return {"metadata": {"name": "p"}, "spec": {"containers": list(containers), **spec}}


def _c(name: str = "base", **fields: object) -> dict:
    return {"name": name, "image": "python:3.12", **fields}


NO_ESCALATION = {"securityContext": {"allowPrivilegeEscalation": False}}


@pytest.mark.parametrize("context, escalation", [
    # Kubernetes refuses allowPrivilegeEscalation: false with privileged or CAP_SYS_ADMIN
    ({"privileged": True}, None),
    ({"capabilities": {"add": ["SYS_ADMIN"]}}, None),
    ({"capabilities": {"add": ["NET_RAW", "CAP_SYS_ADMIN"]}}, None),
    # ... and accepts it with any other capability, or privileged: false
    ({"capabilities": {"add": ["NET_ADMIN"]}}, False),
    ({"capabilities": {"add": "SYS_ADMIN"}}, False),  # not a list: Kubernetes' to reject
    ({"privileged": False}, False),
])
def test_a_default_that_forbids_escalation_gives_way_to_privilege(context, escalation) -> None:
    came_in = _pod(_c(securityContext=dict(context)))
    defaulted = _pod(_c(securityContext={**context, "allowPrivilegeEscalation": False}))
    fixed = keep_pod_valid(came_in, defaulted)
    assert fixed["spec"]["containers"][0]["securityContext"] == (
        context if escalation is None else {**context, "allowPrivilegeEscalation": False})


def test_a_privileged_container_keeps_the_escalation_it_came_with() -> None:
    came_in = _pod(_c(securityContext={"privileged": True, "allowPrivilegeEscalation": True}))
    defaulted = _pod(_c(securityContext={"privileged": True, "allowPrivilegeEscalation": False}))
    assert keep_pod_valid(came_in, defaulted)["spec"]["containers"][0]["securityContext"] == {
        "privileged": True, "allowPrivilegeEscalation": True}


def test_every_container_list_is_kept_valid_whatever_the_pod_lacks() -> None:
    # no initContainers key, a malformed entry before a real container: both still checked
    privileged = _c("sidecar", securityContext={"privileged": True,
                                                "allowPrivilegeEscalation": False})
    came_in = _pod(_c(), _c("sidecar", securityContext={"privileged": True}),
                   ephemeralContainers=["junk", _c("debug", securityContext={"privileged": True})])
    defaulted = _pod(_c(**NO_ESCALATION), privileged,
                     ephemeralContainers=["junk", {**privileged, "name": "debug"}])
    fixed = keep_pod_valid(came_in, defaulted)
    assert fixed["spec"]["containers"] == [_c(**NO_ESCALATION), _c(
        "sidecar", securityContext={"privileged": True})]
    assert fixed["spec"]["ephemeralContainers"] == [
        "junk", _c("debug", securityContext={"privileged": True})]
    assert "initContainers" not in fixed["spec"]


def test_a_container_the_mutation_added_is_kept_valid_too() -> None:
    added = _c("init", securityContext={"privileged": True, "allowPrivilegeEscalation": False})
    fixed = keep_pod_valid(_pod(_c()), _pod(_c(), initContainers=[added]))
    assert fixed["spec"]["initContainers"] == [_c("init", securityContext={"privileged": True})]


def test_a_valid_pod_comes_back_as_the_same_object() -> None:
    pod = _pod(_c(**NO_ESCALATION))
    assert keep_pod_valid(pod, pod) is pod
    assert let_plugins_recompute(pod, pod) is pod


@pytest.mark.parametrize("came_in, defaulted, limits", [
    # a DAG author's request above the pod's own limit: the limit gives way
    ({"limits": {"cpu": "2"}}, {"requests": {"cpu": "4"}, "limits": {"cpu": "2"}}, {"cpu": "4"}),
    # every resource is looked at, not only the first that is fine
    ({}, {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
     {"cpu": "2", "memory": "4Gi"}),
    # an equal request written another way leaves the limit as the admin wrote it
    ({}, {"requests": {"cpu": "1000m"}, "limits": {"cpu": "1"}}, {"cpu": "1"}),
    # a malformed quantity is Kubernetes' to reject, not ours to guess
    ({}, {"requests": {"cpu": "4"}, "limits": {"cpu": "lots"}}, {"cpu": "lots"}),
    # the pod came in invalid: the mutation did not make it so, Kubernetes says why
    ({"requests": {"cpu": "4"}, "limits": {"cpu": "2"}},
     {"requests": {"cpu": "4"}, "limits": {"cpu": "2"}}, {"cpu": "2"}),
])
def test_a_limit_gives_way_only_to_a_request_the_mutation_raised(came_in, defaulted, limits
                                                                  ) -> None:
    fixed = keep_pod_valid(_pod(_c(resources=came_in)), _pod(_c(resources=defaulted)))
    assert fixed["spec"]["containers"][0]["resources"] == {**defaulted, "limits": limits}


# --- a container that states only a limit keeps Guaranteed (keep_limit_only_guarantees) ---------


@pytest.mark.parametrize("came_in, defaulted, resources", [
    # limits only: every default request the pod did not ask for is dropped
    ({"limits": {"cpu": "2", "memory": "1Gi"}},
     {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
     {"limits": {"cpu": "2", "memory": "1Gi"}}),
    # a limit for cpu only: the memory default stays
    ({"limits": {"cpu": "2"}},
     {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2"}},
     {"requests": {"memory": "512Mi"}, "limits": {"cpu": "2"}}),
    # a request the pod asked for itself is its own
    ({"requests": {"cpu": "1"}, "limits": {"cpu": "2"}},
     {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"cpu": "2"}},
     {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"cpu": "2"}}),
    # no limit of its own: the defaults apply
    ({}, {"requests": {"cpu": "500m"}}, {"requests": {"cpu": "500m"}}),
])
def test_a_limit_only_container_keeps_guaranteed_under_default_requests(came_in, defaulted,
                                                                        resources) -> None:
    fixed = keep_limit_only_guarantees(_pod(_c(resources=came_in)),
                                       _pod(_c(resources=defaulted)))
    assert fixed["spec"]["containers"][0] == _c(resources=resources)


def test_a_container_the_mutation_added_gets_every_default_request() -> None:
    added = _c("sidecar", resources={"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}})
    fixed = keep_limit_only_guarantees(_pod(_c()), _pod(_c(), added))
    assert fixed["spec"]["containers"][1] == added


def test_a_limit_only_pod_keeps_guaranteed_under_a_templates_default() -> None:
    policies = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: PodTemplate
        metadata: {name: defaults}
        spec:
          template:
            spec:
              containers:
                - name: base
                  resources: {requests: {cpu: 250m, memory: 256Mi}}
    """)
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2", "memory": "1Gi"}}
    result = mutate_pod(pod, policies, "data-airflow")
    assert result.pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "2", "memory": "1Gi"}}


# --- Windows pods ---------------------------------------------------------------------------------


def test_a_windows_pod_loses_only_the_linux_settings_a_default_added() -> None:
    came_in = _pod(_c(securityContext={"runAsUser": 1000}), os={"name": "windows"},
                   securityContext={"runAsUser": 1000})
    defaulted = _pod(_c(securityContext={"runAsUser": 1000, "runAsNonRoot": True,
                                         "seccompProfile": {"type": "RuntimeDefault"},
                                         "allowPrivilegeEscalation": False}),
                     os={"name": "windows"},
                     securityContext={"runAsUser": 1000, "runAsNonRoot": True,
                                      "fsGroup": 1000})
    fixed = keep_pod_valid(came_in, defaulted)
    # the pod's own runAsUser is Kubernetes' to judge; runAsNonRoot is no Linux-only field
    assert fixed["spec"]["securityContext"] == {"runAsUser": 1000, "runAsNonRoot": True}
    assert fixed["spec"]["containers"][0]["securityContext"] == {"runAsUser": 1000,
                                                                 "runAsNonRoot": True}


def test_a_windows_pod_without_security_contexts_is_left_as_it_is() -> None:
    pod = _pod(_c(), os={"name": "windows"})
    assert keep_pod_valid(pod, pod) == _pod(_c(), os={"name": "windows"})
    # nothing Linux-only to take back: the containers are not copied either
    pod = _pod(_c(securityContext={"runAsNonRoot": True}), os={"name": "windows"})
    assert keep_pod_valid(pod, pod)["spec"]["containers"] is pod["spec"]["containers"]


# --- the token the ServiceAccount plugin mounted (let_plugins_recompute) -------------------------


def _token_volume(name: str = "kube-api-access-x7k2q", **projected: object) -> dict:
    return {"name": name, "projected": projected or {
        "sources": [{"serviceAccountToken": {"path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt"}}]}}


def _mount(name: str = "kube-api-access-x7k2q") -> dict:
    return {"name": name, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}


def test_a_pod_that_asked_for_a_token_loses_it_under_a_lock_that_turns_it_off() -> None:
    came_in = _pod(_c(volumeMounts=[_mount()]), _c("no-mounts"),
                   volumes=[_token_volume()], automountServiceAccountToken=True)
    locked = _pod(_c(volumeMounts=[_mount()]), _c("no-mounts"),
                  volumes=[_token_volume()], automountServiceAccountToken=False)
    assert let_plugins_recompute(came_in, locked)["spec"] == _pod(
        _c(volumeMounts=[]), _c("no-mounts"), volumes=[],
        automountServiceAccountToken=False)["spec"]


def test_a_pod_that_turned_the_token_off_itself_keeps_the_volumes_it_mounts() -> None:
    # The plugin mounted nothing: a projected token the pod mounts itself is its own choice.
    pod = _pod(_c(volumeMounts=[_mount()]), volumes=[_token_volume()],
               automountServiceAccountToken=False)
    assert let_plugins_recompute(pod, pod) is pod


@pytest.mark.parametrize("volume", [
    _token_volume("vault-token"),  # the author's own projected token, not the plugin's
    _token_volume(sources=[{"configMap": {"name": "kube-root-ca.crt"}}]),
    _token_volume(sources=["serviceAccountToken"]),
    _token_volume(sources="serviceAccountToken"),
    {"name": "kube-api-access-x7k2q", "secret": {"secretName": "token"}},
    {"name": "kube-api-access-x7k2q", "projected": None},
    {"projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
    "kube-api-access-x7k2q",
])
def test_only_the_plugins_token_volume_is_taken_back(volume) -> None:
    came_in = _pod(_c(volumeMounts=[_mount()]), volumes=[volume, _token_volume()])
    locked = _pod(_c(volumeMounts=[_mount()]), volumes=[volume, _token_volume()],
                  automountServiceAccountToken=False)
    spec = let_plugins_recompute(came_in, locked)["spec"]
    assert spec["volumes"] == [volume]


def test_turning_the_token_off_on_a_pod_without_volumes_changes_nothing_else() -> None:
    for volumes in ({}, {"volumes": None}):
        locked = _pod(_c(), automountServiceAccountToken=False, **volumes)
        assert let_plugins_recompute(_pod(_c(), **volumes), locked) is locked


def test_a_pod_without_a_spec_is_no_crash() -> None:
    mutated = _pod(_c(), automountServiceAccountToken=False)
    assert let_plugins_recompute({"metadata": {}}, mutated) is mutated
    assert let_plugins_recompute({"spec": None}, {"spec": "x"}) == {"spec": "x"}
