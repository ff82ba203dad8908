"""Real Airflow pods for tests: as Airflow built them, and as the validating hook sees them."""

from __future__ import annotations

import copy
import json

from tests.support.paths import AIRFLOW_PODS
from tests.support.policies import bundled_policies
from webhook.mutation.mutate import mutate_pod

# What kube-apiserver's DefaultTolerationSeconds plugin adds to every pod before any webhook.
DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300})


def airflow_pod(name: str) -> dict:
    """A fresh copy of a real Airflow pod, e.g. `airflow3-executor`."""
    return copy.deepcopy(json.loads((AIRFLOW_PODS / f"{name}.json").read_text()))


def admitted_pod(name: str) -> dict:
    """A real Airflow pod as the validating hook sees it: after the bundled mutation (its
    locked fields applied), e.g. `airflow3-executor`."""
    result = mutate_pod(airflow_pod(name), bundled_policies(), "airflow")
    assert result.allowed, result.refusals
    return copy.deepcopy(result.pod)


# One of the bundled Settings' Airflow accounts, and a pod it might write without Airflow's labels.
WORKER = "system:serviceaccount:airflow:airflow-worker"
UNLABELLED = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "no-labels", "namespace": "airflow"},
              "spec": {"hostPID": True,
                       "containers": [{"name": "c", "image": "busybox:1.36",
                                       "securityContext": {"privileged": True}}]}}
