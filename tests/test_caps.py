"""Caps on what one pod may carry: a hostile pod is refused, naming the field and the cap,
after one bounded look, before anything merges or judges it."""

from __future__ import annotations

import pytest

from tests.support.pods import airflow_pod
from webhook import budget
from webhook.caps import CapExceeded, annotations_bytes, check_caps, describe
from webhook.policy.model import Limits


def test_real_airflow_pods_are_far_within_the_default_caps() -> None:
    for name in ("airflow2-executor", "airflow3-executor", "airflow3-kpo",
                 "airflow3-kpo-xcom", "airflow3-executor-pod-override"):
        assert check_caps(airflow_pod(name), Limits()) == []


def test_sixty_thousand_tolerations_are_refused_by_the_tolerations_cap() -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["tolerations"] = [{"key": f"k{i}", "operator": "Exists"} for i in range(60_000)]
    found = check_caps(pod, Limits())
    assert found == [CapExceeded("spec.tolerations", "tolerations", 500, 60_000)]
    assert found[0].message == ("spec.tolerations: 60000 items, more than the cap of 500 "
                                "(Settings limits.tolerations)")


def test_a_cap_is_a_bound_not_a_fence_post() -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["tolerations"] = [{"key": f"k{i}"} for i in range(3)]
    assert check_caps(pod, Limits(tolerations=3)) == []
    assert check_caps(pod, Limits(tolerations=2)) == [
        CapExceeded("spec.tolerations", "tolerations", 2, 3)]


def test_per_container_lists_name_the_container() -> None:
    pod = airflow_pod("airflow3-kpo")
    base = pod["spec"]["containers"][0]
    base["env"] = [{"name": f"E{i}", "value": "x"} for i in range(5)]
    base["volumeMounts"] = [{"name": "v", "mountPath": f"/m{i}"} for i in range(4)]
    pod["spec"]["initContainers"] = [{"name": "init", "image": "i", "ports": [
        {"containerPort": p} for p in range(1, 4)], "envFrom": [{"configMapRef": {"name": "a"}},
                                                               {"secretRef": {"name": "b"}}]}]
    limits = Limits(env=4, volume_mounts=3, ports=2, env_from=1)
    assert [f.message for f in check_caps(pod, limits)] == [
        "spec.containers[base].env: 5 items, more than the cap of 4 (Settings limits.env)",
        "spec.containers[base].volumeMounts: 4 items, more than the cap of 3 "
        "(Settings limits.volumeMounts)",
        "spec.initContainers[init].envFrom: 2 items, more than the cap of 1 "
        "(Settings limits.envFrom)",
        "spec.initContainers[init].ports: 3 items, more than the cap of 2 "
        "(Settings limits.ports)",
    ]


@pytest.mark.parametrize("list_name", ["containers", "initContainers", "ephemeralContainers"])
def test_every_kind_of_container_list_is_capped(list_name: str) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"][list_name] = [{"name": f"c{i}", "image": "i"} for i in range(4)]
    assert check_caps(pod, Limits(containers=3)) == [
        CapExceeded(f"spec.{list_name}", "containers", 3, 4)]


def test_volumes_labels_and_annotation_bytes() -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["volumes"] = [{"name": f"v{i}", "emptyDir": {}} for i in range(3)]
    pod["metadata"]["labels"] = {f"l{i}": "v" for i in range(3)}
    pod["metadata"]["annotations"] = {"a": "é" * 10}  # 1 + 20 bytes in UTF-8
    assert check_caps(pod, Limits(volumes=2, labels=2, annotations_bytes=20)) == [
        CapExceeded("metadata.annotations", "annotationsBytes", 20, 21, "bytes"),
        CapExceeded("metadata.labels", "labels", 2, 3, "labels"),
        CapExceeded("spec.volumes", "volumes", 2, 3),
    ]


def test_annotation_bytes_are_counted_as_kube_apiserver_counts_them() -> None:
    assert annotations_bytes({"ab": "cde", "é": ""}) == 2 + 3 + 2
    assert annotations_bytes({"a": "x" * 100, "b": "y" * 100}, stop_after=50) == 101


def test_any_other_list_or_map_is_held_to_list_items_naming_its_path() -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["args"] = ["a"] * 21
    assert check_caps(pod, Limits(list_items=20)) == [
        CapExceeded("spec.containers[0].args", "listItems", 20, 21)]
    pod["spec"]["containers"][0]["args"] = []
    pod["spec"]["nodeSelector"] = {f"k{i}": "v" for i in range(21)}
    assert check_caps(pod, Limits(list_items=20)) == [
        CapExceeded("spec.nodeSelector", "listItems", 20, 21, "keys")]


def test_lists_with_a_cap_of_their_own_are_not_held_to_list_items() -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["tolerations"] = [{"key": f"k{i}"} for i in range(25)]
    pod["metadata"]["labels"].update({f"l{i}": "v" for i in range(25)})
    assert check_caps(pod, Limits(list_items=20)) == []


def test_the_walk_stops_at_the_values_cap() -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["affinity"] = {"x": [[[0] * 10] * 10] * 10}  # 1,111 values and more
    found = check_caps(pod, Limits(values=1000))
    assert found == [CapExceeded("<pod>", "values", 1000, 1001, "values")]
    assert found[0].message == "<pod>: more than 1000 values in all (Settings limits.values)"


def _text_of(value: object) -> int:
    """Characters of every key and string, counted on their own (the cap's oracle)."""
    if isinstance(value, dict):
        return sum(len(k) + _text_of(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_of(v) for v in value)
    return len(value) if isinstance(value, str) else 0


def test_a_pod_of_long_strings_is_refused_by_the_text_cap() -> None:
    """2.9 MiB of args passes every count; etcd would refuse to store it, after both hooks
    admitted it. The text cap refuses it in the review, naming the cap."""
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["args"] = ["x" * 1_000_000, "y" * 1_900_000]
    found = check_caps(pod, Limits())
    assert found == [CapExceeded("<pod>", "text", 1_048_576, 1_048_577, "characters")]
    assert found[0].message == ("<pod>: more than 1048576 characters of keys and strings in "
                                "all (Settings limits.text)")


@pytest.mark.parametrize("name", ["airflow3-executor", "airflow3-kpo-xcom"])
def test_the_text_cap_counts_every_key_and_string_and_is_a_bound(name: str) -> None:
    pod = airflow_pod(name)
    pod["spec"]["nodeSelector"] = {"pool": "batch"}
    pod["spec"]["containers"][0]["command"] = ["python", "-c", "print(1)"]
    text = _text_of(pod)
    assert check_caps(pod, Limits(text=text)) == []
    assert check_caps(pod, Limits(text=text - 1)) == [
        CapExceeded("<pod>", "text", text - 1, text, "characters")]


def test_the_walk_stops_when_the_time_budget_is_spent() -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["affinity"] = {"x": [[[0]] * 50] * 100}  # 5,000 lists to walk
    with pytest.raises(budget.OutOfTime), budget.deadline(0.0, started=-1.0):
        check_caps(pod, Limits())


def test_a_denial_lists_up_to_the_violations_cap_then_counts() -> None:
    found = [CapExceeded(f"spec.containers[c{i}].env", "env", 1, 2) for i in range(4)]
    assert describe(found, 2) == (
        "spec.containers[c0].env: 2 items, more than the cap of 1 (Settings limits.env); "
        "spec.containers[c1].env: 2 items, more than the cap of 1 (Settings limits.env); "
        "… and 2 more")


def test_not_a_pod_is_not_capped_here() -> None:
    assert check_caps(["not", "a", "pod"], Limits()) == []


def test_without_the_walk_only_the_named_caps_are_checked() -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["containers"][0]["args"] = ["a"] * 21
    assert check_caps(pod, Limits(list_items=20), walk=False) == []
    pod["spec"]["tolerations"] = [{"key": "a"}] * 3
    assert check_caps(pod, Limits(list_items=20, tolerations=2), walk=False) == [
        CapExceeded("spec.tolerations", "tolerations", 2, 3)]
