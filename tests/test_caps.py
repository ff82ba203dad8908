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


def _values_of(value: object) -> int:
    """JSON values inside every list and map, counted on their own (the values cap's oracle)."""
    if isinstance(value, dict):
        return len(value) + sum(_values_of(v) for v in value.values())
    if isinstance(value, list):
        return len(value) + sum(_values_of(v) for v in value)
    return 0


def test_the_values_cap_is_a_bound_not_a_fence_post() -> None:
    pod = airflow_pod("airflow3-executor")
    values = _values_of(pod)
    assert check_caps(pod, Limits(values=values)) == []
    assert check_caps(pod, Limits(values=values - 1)) == [
        CapExceeded("<pod>", "values", values - 1, values, "values")]


@pytest.mark.parametrize(("limits", "grow"), [
    (Limits(labels=3), lambda pod: pod["metadata"].__setitem__(
        "labels", {f"l{i}": "v" for i in range(3)})),
    (Limits(annotations_bytes=12), lambda pod: pod["metadata"].__setitem__(
        "annotations", {"ab": "c" * 10})),
    (Limits(containers=2), lambda pod: pod["spec"].__setitem__(
        "containers", [{"name": f"c{i}"} for i in range(2)])),
    (Limits(env=2), lambda pod: pod["spec"]["containers"][0].__setitem__(
        "env", [{"name": f"E{i}"} for i in range(2)])),
    (Limits(list_items=2), lambda pod: pod["spec"]["containers"][0].__setitem__(
        "args", ["a", "b"])),
])
def test_each_named_cap_admits_exactly_its_limit(limits: Limits, grow) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "base"}]}}
    grow(pod)
    assert check_caps(pod, limits) == []


def test_a_pod_with_more_top_level_keys_than_list_items_is_named_as_the_pod() -> None:
    pod = {f"k{i}": i for i in range(3)}
    assert check_caps(pod, Limits(list_items=3)) == []
    assert check_caps({**pod, "k3": 3}, Limits(list_items=3)) == [
        CapExceeded("<pod>", "listItems", 3, 4, "keys")]


@pytest.mark.parametrize(("name", "key"), [
    ("n" * 63, "n" * 63), ("n" * 64, "1"), ("", "1"), (7, "1"), (None, "1")])
def test_a_container_is_named_by_its_name_when_it_is_one(name: object, key: str) -> None:
    pod = {"spec": {"containers": [{"name": "base"}, {"name": name, "env": [{}, {}]}]}}
    assert check_caps(pod, Limits(env=1)) == [
        CapExceeded(f"spec.containers[{key}].env", "env", 1, 2)]


def test_malformed_parts_of_a_pod_are_skipped_not_a_crash() -> None:
    """The caps run before anything checks the pod's shape: odd parts are passed over, and
    what follows them still counted."""
    assert check_caps({"metadata": "x", "spec": ["y"]}, Limits()) == []
    pod = {"spec": {"containers": "not a list", "initContainers": [
        "not a container", {"name": "late", "ports": [{}, {}]}],
        "ephemeralContainers": [{}, {}, {}]}}
    assert check_caps(pod, Limits(ports=1, containers=2)) == [
        CapExceeded("spec.ephemeralContainers", "containers", 2, 3),
        CapExceeded("spec.initContainers[late].ports", "ports", 1, 2)]


def test_annotations_are_counted_until_past_the_cap_and_odd_values_by_their_text() -> None:
    assert annotations_bytes({"a": "x" * 49, "b": "y"}, stop_after=50) == 52
    assert annotations_bytes({"a": 12345}) == 1 + 5
    pod = {"metadata": {"annotations": {"a": "x" * 100, "b": "y" * 100}}}
    assert check_caps(pod, Limits(annotations_bytes=50)) == [
        CapExceeded("metadata.annotations", "annotationsBytes", 50, 101, "bytes")]


def test_a_denial_counts_what_it_does_not_list() -> None:
    found = [CapExceeded(f"spec.volumes{i}", "volumes", 1, 2) for i in range(3)]
    assert describe(found, 2).endswith("; … and 1 more")
    assert describe(found, 3) == "; ".join(f.message for f in found)


def test_the_walk_looks_at_the_clock_once_every_4096_lists_and_maps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    looks = []
    monkeypatch.setattr(budget, "check", lambda: looks.append(1))
    pod = {"spec": {"x": [[0]] * 990 + [[[0]] * 999] * 9}}  # 1 + 1 + 1 + 990 + 9 + 8,991
    assert check_caps(pod, Limits(list_items=1000, values=100_000)) == []
    assert len(looks) == (3 + 990 + 9 + 8991) // 4096 == 2


def test_a_list_inside_a_list_is_held_to_list_items_naming_its_path() -> None:
    pod = {"spec": {"affinity": {"x": [[0] * 3, [0] * 4]}}}
    assert check_caps(pod, Limits(list_items=3)) == [
        CapExceeded("spec.affinity.x[1]", "listItems", 3, 4)]


def test_every_container_list_is_checked_after_one_over_its_cap() -> None:
    pod = {"spec": {"initContainers": [{}, {}, {}], "containers": [{"name": "c", "env": [{}, {}]}]}}
    assert check_caps(pod, Limits(containers=2, env=1)) == [
        CapExceeded("spec.containers[c].env", "env", 1, 2),
        CapExceeded("spec.initContainers", "containers", 2, 3)]
