"""envelope: limits — a container without a memory limit is refused, naming it; the
PodTemplates give Airflow's own containers one, so stock pods pass."""

from __future__ import annotations

import jsonpatch

from tests.support.pods import airflow_pod
from tests.support.policies import bundled_envelope_messages
from webhook.mutation.mutate import mutate_pod

RULE = "envelope: limits"
WHY = ("must be set: a container without a memory limit is unbounded (Envelope/airflow "
       "limits), got <unset> (envelope: limits)")


def test_a_second_container_without_resources_is_refused():
    pod = airflow_pod("airflow3-kpo-xcom")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1Gi"}}
    pod["spec"]["containers"].append({"name": "miner", "image": "x"})
    pod["spec"]["initContainers"] = [{"name": "prep", "image": "x",
                                      "resources": {"limits": {"cpu": "1"}}}]
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        f"spec.containers[airflow-xcom-sidecar].resources.limits.memory {WHY}",
        f"spec.containers[miner].resources.limits.memory {WHY}",
        f"spec.initContainers[prep].resources.limits.memory {WHY}"]


def test_a_memory_limit_of_zero_is_no_limit():
    # The kubelet hands a limit of 0 to the runtime, which then sets none: unbounded.
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"memory": "0Gi"}}
    pod["spec"]["initContainers"] = [{"name": "prep", "image": "x",
                                      "resources": {"limits": {"memory": 0}}}]
    zero = ("must be more than 0: the container runtime reads a memory limit of 0 as no "
            "limit (Envelope/airflow limits), got {} (envelope: limits)")
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        f"spec.containers[base].resources.limits.memory {zero.format(chr(34) + '0Gi' + chr(34))}",
        f"spec.initContainers[prep].resources.limits.memory {zero.format('0')}"]
    pod["spec"]["initContainers"][0]["resources"]["limits"]["memory"] = "1n"
    pod["spec"]["containers"][0]["resources"]["limits"]["memory"] = "1Mi"
    assert bundled_envelope_messages(pod, "kpo", RULE) == []


def test_the_bundled_templates_give_airflows_own_containers_a_limit(bundled):
    for fixture in ("airflow3-kpo-xcom", "airflow2-executor"):
        pod = airflow_pod(fixture)
        mutation = mutate_pod(pod, bundled, "data-airflow",
                              "system:serviceaccount:airflow:airflow-scheduler")
        final = jsonpatch.apply_patch(pod, mutation.patch)
        pod_type = "kpo" if "kpo" in fixture else "executor"
        assert bundled_envelope_messages(final, pod_type, RULE) == [], fixture


def test_ephemeral_containers_hold_no_resources_and_are_not_asked_for_limits():
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1Gi"}}
    pod["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "busybox:1.36"}]
    assert bundled_envelope_messages(pod, "kpo", RULE) == []


def test_a_limit_that_is_no_quantity_is_left_to_the_resources_section():
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"memory": "lots"}}
    pod["spec"]["initContainers"] = [{"name": "prep", "image": "x",
                                      "resources": {"limits": {"memory": True}}}]
    assert bundled_envelope_messages(pod, "kpo", RULE) == []
