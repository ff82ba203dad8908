"""The DAG author's helper fails when the DAG is parsed, not when the task starts: every
malformed argument is a ValueError naming it, and what it accepts the webhook accepts."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kubernetes.client import models as k8s

from tests.conftest import airflow_pod
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
