"""The DAG author's helper fails when the DAG is parsed, not when the task starts: every
malformed argument is a ValueError naming it, and what it accepts the webhook accepts."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kubernetes.client import models as k8s

from tests.support.pods import airflow_pod
from webhook.dag_annotations import override_annotations
from webhook.mutation.mutate import mutate_pod

P = "airflow-pod-webhook.io/"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"memory": "8GB"}, "memory: '8GB' is not a Kubernetes quantity (e.g. 4Gi); did you mean "
                        "'8G' or '8Gi'?"),
    ({"memory_limit": "16 gib"}, "memory_limit: '16 gib' is not a Kubernetes quantity (e.g. "
                                 "4Gi); did you mean '16Gi'?"),
    ({"cpu": "two"}, "cpu: 'two' is not a Kubernetes quantity (e.g. 500m)"),
    ({"cpu_limit": "1K"}, "cpu_limit: '1K' is not a Kubernetes quantity (e.g. 2)"),
    ({"ephemeral_storage": "-1Gi"}, "ephemeral_storage: '-1Gi' must not be negative"),
    ({"gpu": "0.5"}, "gpu: '0.5' must be a whole number of GPUs"),
    ({"gpu": True}, "gpu: True must be a quantity string such as '1'"),
    ({"memory": 8.5}, "memory: 8.5 must be a quantity string such as '4Gi'"),
    ({"profiles": "highmem"}, "profiles: give a list of profile names, e.g. ['highmem'], not "
                              "a string (a string would be read letter by letter)"),
    ({"profiles": ["highmem,spot"]}, "profiles: 'highmem,spot' is not a profile name (a "
                                     "non-empty string without commas)"),
    ({"profiles": [""]}, "profiles: '' is not a profile name"),
    ({"profiles": 3}, "profiles: 3 is not a list of profile names"),
    ({"node_pool": "high mem"}, "node_pool: 'high mem' is not a node pool name"),
    ({"node_pool": ""}, "node_pool: '' is not a node pool name"),
    ({"memroy": "8Gi"}, "override_annotations: unknown argument 'memroy'; did you mean "
                        "'memory'?"),
    ({"replicas": 2}, "override_annotations: unknown argument 'replicas' (known: cpu, "
                      "cpu_limit, memory, memory_limit, ephemeral_storage, gpu, node_pool, "
                      "prefix)"),
    ({"prefix": "airflow-pod-webhook.io"}, "prefix: 'airflow-pod-webhook.io' must be a DNS "
                                           "name ending in '/'"),
    ({"pod": {"spec": {"containers": [{"name": "base", "resource": {}}]}}},
     "pod: spec.containers[base].resource: is not a field of Container; did you mean "
     "'resources'?"),
    ({"pod": {"spec": {"containers": [{"name": "base", "resources": {"limits": {
        "memory": "8GB"}}}]}}},
     "pod: spec.containers[base].resources.limits.memory: is not a Kubernetes quantity: '8GB'"),
    ({"pod": "spec: {}"}, "pod: give a kubernetes.client V1Pod or a dict shaped like one, not "
                          "str"),
])
def test_a_malformed_argument_is_a_value_error_naming_it(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        override_annotations(**kwargs)
    assert str(raised.value).startswith(message)


def test_what_the_helper_builds_the_webhook_applies(bundled) -> None:
    annotations = override_annotations(
        pod=k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(
            name="base", env=[k8s.V1EnvVar(name="MODE", value="full")])])),
        profiles=["highmem", " spot "], cpu="2", memory="8Gi", gpu=1, node_pool="gpu")
    assert annotations[P + "profiles"] == "highmem,spot"
    assert annotations[P + "gpu"] == "1"
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["annotations"].update(annotations)
    result = mutate_pod(pod, bundled, "data-airflow")
    assert result.allowed, [r.message for r in result.refusals]
    base = result.pod["spec"]["containers"][0]
    assert base["resources"]["requests"]["cpu"] == "2"
    assert base["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "MODE", "value": "full"} in base["env"]


def test_the_webhook_refuses_what_the_helper_refuses(bundled) -> None:
    # The same quantity rule on both sides: a half GPU is refused in the cluster too.
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["annotations"][P + "gpu"] = "0.5"
    [refusal] = mutate_pod(pod, bundled, "data-airflow").refusals
    assert refusal.annotation == P + "gpu" and refusal.malformed


def test_the_helper_imports_neither_flask_nor_the_server() -> None:
    code = ("import sys, webhook.dag_annotations as d; d.override_annotations(memory='1Gi', "
            "pod={'spec': {}}); print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('flask', 'werkzeug', 'gunicorn', 'jsonschema', 'orjson', 'prometheus_client', "
            "'kubernetes') or m in ('webhook.serving.server', 'webhook.serving.app', "
            "'webhook.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --- what the helper accepts, the webhook accepts (hypothesis) ---------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from webhook.decide import PodRequest, decide  # noqa: E402

FIXTURES = ("airflow2-executor", "airflow3-executor", "airflow3-kpo", "airflow3-kpo-xcom")
PADDING = st.sampled_from(["", " ", "  "])
MEMORY = st.builds(lambda a, n, unit, b: f"{a}{n}{unit}{b}", PADDING, st.integers(1, 8),
                   st.sampled_from(["Gi", "G", "Mi", "M"]), PADDING)
CPU = st.one_of(st.sampled_from(["250m", "500m", "1", "2", "1.5"]),
                st.builds(lambda a, n, b: f"{a}{n}{b}", PADDING, st.integers(1, 4), PADDING))
TOLERATIONS = st.lists(st.fixed_dictionaries({
    "key": st.sampled_from(["spot", "nvidia.com/gpu"]), "operator": st.just("Exists"),
    "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule"])}), max_size=2)


@st.composite
def pod_fragments(draw: st.DrawFn) -> dict | None:
    """What DAG authors hand the helper: a V1PodSpec needs `containers`, so they pass []."""
    if draw(st.booleans()):
        return None
    containers: list = []
    if draw(st.booleans()):
        resources = {"requests": {"memory": draw(MEMORY), "cpu": draw(CPU)}}
        containers = [{"name": "base", "resources": resources,
                       "env": [{"name": "MODE", "value": draw(st.sampled_from(["a", "b"]))}]}]
    spec: dict = {"containers": containers}
    tolerations = draw(TOLERATIONS)
    if tolerations:
        spec["tolerations"] = tolerations
    return {"spec": spec}


@given(fixture=st.sampled_from(FIXTURES), pod=pod_fragments(),
       profiles=st.lists(st.sampled_from(["small", "highmem"]), max_size=1, unique=True),
       memory=st.none() | MEMORY, cpu=st.none() | CPU,
       node_pool=st.none() | st.sampled_from(["default", "highmem", "spot"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_what_the_helper_accepts_the_webhook_accepts(bundled, fixture: str, pod: dict | None,
                                                     profiles: list[str], memory: str | None,
                                                     cpu: str | None, node_pool: str | None
                                                     ) -> None:
    try:
        annotations = override_annotations(pod=pod, profiles=profiles, memory=memory, cpu=cpu,
                                           node_pool=node_pool)
    except ValueError:
        return  # refused at parse time: the DAG author hears it there
    task_pod = airflow_pod(fixture)
    task_pod["metadata"].setdefault("annotations", {}).update(annotations)
    decision = decide(PodRequest(task_pod, "airflow"), bundled)
    assert decision.verdict == "allow", (annotations, decision.message)


def test_an_empty_container_list_is_dropped(bundled) -> None:
    # V1PodSpec requires containers: a fragment that only tolerates spot nodes carries [].
    annotations = override_annotations(pod=k8s.V1Pod(spec=k8s.V1PodSpec(
        containers=[], tolerations=[k8s.V1Toleration(key="spot", operator="Exists")])))
    assert annotations == {"airflow-pod-webhook.io/pod-override":
                           '{"spec":{"tolerations":[{"key":"spot","operator":"Exists"}]}}'}


def test_a_quantity_is_trimmed_as_kube_apiserver_trims_it() -> None:
    annotations = override_annotations(pod={"spec": {"containers": [
        {"name": "base", "resources": {"requests": {"memory": "2Gi "},
                                       "limits": {"memory": " 2Gi"}}}]}})
    assert annotations == {"airflow-pod-webhook.io/pod-override": (
        '{"spec":{"containers":[{"name":"base","resources":{"limits":{"memory":"2Gi"},'
        '"requests":{"memory":"2Gi"}}}]}}')}
