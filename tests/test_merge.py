"""The merge rules, told as the surprises Airflow users hit with pod_override."""

import pytest

from webhook.mutation.merge import merge_pod


def base_pod() -> dict:
    return {
        "spec": {
            "containers": [
                {"name": "base", "image": "apache/airflow:3.0.0",
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "volumeMounts": [{"name": "logs", "mountPath": "/opt/airflow/logs"}]},
                {"name": "git-sync", "image": "git-sync:4"},
            ],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "airflow",
                             "effect": "NoSchedule"}],
            "volumes": [{"name": "logs", "emptyDir": {}}],
            "hostNetwork": True,
        }
    }


def test_env_merges_by_name_not_position() -> None:
    fragment = {"spec": {"containers": [{"name": "base", "env": [{"name": "B", "value": "9"},
                                                                 {"name": "C", "value": "3"}]}]}}
    env = merge_pod(base_pod(), fragment)["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "9"},
                   {"name": "C", "value": "3"}]


def test_a_sidecar_is_added_not_fused_with_the_second_container() -> None:
    sidecar = {"name": "vault-agent", "image": "vault:1.15"}
    containers = merge_pod(base_pod(), {"spec": {"containers": [sidecar]}})["spec"]["containers"]
    assert [c["name"] for c in containers] == ["base", "git-sync", "vault-agent"]
    assert containers[1] == {"name": "git-sync", "image": "git-sync:4"}


def test_a_container_entry_without_image_never_adds_a_container() -> None:
    fragment = {"spec": {"containers": [{"name": "missing", "resources": {}}]}}
    names = [c["name"] for c in merge_pod(base_pod(), fragment)["spec"]["containers"]]
    assert names == ["base", "git-sync"]


def test_star_entry_applies_to_every_container() -> None:
    fragment = {"spec": {"containers": [{"name": "*", "securityContext": {"runAsUser": 1}}]}}
    containers = merge_pod(base_pod(), fragment)["spec"]["containers"]
    assert all(c["securityContext"] == {"runAsUser": 1} for c in containers)


def test_explicit_false_counts() -> None:
    assert merge_pod(base_pod(), {"spec": {"hostNetwork": False}})["spec"]["hostNetwork"] is False


def test_empty_list_clears_and_null_removes() -> None:
    merged = merge_pod(base_pod(), {"spec": {"tolerations": [], "hostNetwork": None}})
    assert merged["spec"]["tolerations"] == []
    assert "hostNetwork" not in merged["spec"]


def test_tolerations_add_up_instead_of_replacing() -> None:
    spot = {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}
    tolerations = merge_pod(base_pod(), {"spec": {"tolerations": [spot]}})["spec"]["tolerations"]
    assert tolerations == [base_pod()["spec"]["tolerations"][0], spot]
    again = merge_pod({"spec": {"tolerations": tolerations}}, {"spec": {"tolerations": [spot]}})
    assert again["spec"]["tolerations"] == tolerations


def test_resources_merge_key_by_key() -> None:
    pod = {"spec": {"containers": [{"name": "base", "image": "x", "resources": {
        "requests": {"cpu": "1", "memory": "1Gi"}}}]}}
    fragment = {"spec": {"containers": [{"name": "base", "resources": {
        "limits": {"memory": "4Gi"}}}]}}
    resources = merge_pod(pod, fragment)["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}


def test_command_and_args_are_replaced_whole() -> None:
    pod = {"spec": {"containers": [{"name": "base", "image": "x", "args": ["a", "b", "c"]}]}}
    fragment = {"spec": {"containers": [{"name": "base", "args": ["z"]}]}}
    assert merge_pod(pod, fragment)["spec"]["containers"][0]["args"] == ["z"]


def test_volume_mounts_merge_by_mount_path() -> None:
    fragment = {"spec": {"containers": [{"name": "base", "volumeMounts": [
        {"name": "logs2", "mountPath": "/opt/airflow/logs"}]}]}}
    mounts = merge_pod(base_pod(), fragment)["spec"]["containers"][0]["volumeMounts"]
    assert mounts == [{"name": "logs2", "mountPath": "/opt/airflow/logs"}]


def test_template_fill_keeps_what_the_pod_says() -> None:
    template = {"spec": {"hostNetwork": False, "serviceAccountName": "airflow-worker",
                         "containers": [{"name": "base", "env": [{"name": "A", "value": "T"}]}]}}
    merged = merge_pod(base_pod(), template, fragment_wins=False)
    assert merged["spec"]["hostNetwork"] is True
    assert merged["spec"]["serviceAccountName"] == "airflow-worker"
    assert merged["spec"]["containers"][0]["env"][0] == {"name": "A", "value": "1"}


def test_template_fills_the_empty_lists_kpo_serialises() -> None:
    kpo = {"spec": {"tolerations": [], "nodeSelector": {}, "imagePullSecrets": []}}
    template = {"spec": {"tolerations": [{"key": "dedicated", "operator": "Exists"}],
                         "nodeSelector": {"pool": "airflow"},
                         "imagePullSecrets": [{"name": "registry"}]}}
    assert merge_pod(kpo, template, fragment_wins=False)["spec"] == template["spec"]


def test_inputs_are_not_modified() -> None:
    pod, fragment = base_pod(), {"spec": {"containers": [{"name": "base", "env": [
        {"name": "A", "value": "x"}]}], "tolerations": [{"key": "t"}]}}
    merge_pod(pod, fragment)
    assert pod == base_pod()
    assert fragment["spec"]["tolerations"] == [{"key": "t"}]


# ---- pinned by mutation testing (docs/testing.md): each test fails for a named wrong merge


def test_a_template_never_overwrites_a_pods_explicit_false_zero_or_empty_string() -> None:
    pod = {"spec": {"hostNetwork": False, "priority": 0, "priorityClassName": ""}}
    template = {"spec": {"hostNetwork": True, "priority": 7, "priorityClassName": "batch"}}
    assert merge_pod(pod, template, fragment_wins=False) == pod


def test_a_template_fills_a_field_the_pod_sets_to_null() -> None:
    pod = {"spec": {"priorityClassName": None}}
    merged = merge_pod(pod, {"spec": {"priorityClassName": "batch"}}, fragment_wins=False)
    assert merged == {"spec": {"priorityClassName": "batch"}}


def test_a_template_fills_an_empty_collection_even_of_another_shape() -> None:
    pod = {"spec": {"securityContext": [], "args": ["keep"]}}
    template = {"spec": {"securityContext": {"runAsNonRoot": True}, "args": "replace"}}
    merged = merge_pod(pod, template, fragment_wins=False)
    assert merged == {"spec": {"securityContext": {"runAsNonRoot": True}, "args": ["keep"]}}


def test_a_template_fills_an_empty_unkeyed_list_and_keeps_a_full_one() -> None:
    pod = {"spec": {"containers": [{"name": "base", "image": "x", "command": [],
                                    "args": ["a"]}]}}
    template = {"spec": {"containers": [{"name": "base", "command": ["run"],
                                         "args": ["z"]}]}}
    container = merge_pod(pod, template, fragment_wins=False)["spec"]["containers"][0]
    assert container == {"name": "base", "image": "x", "command": ["run"], "args": ["a"]}


def test_an_empty_list_in_a_template_does_not_clear_the_pods_list() -> None:
    toleration = {"key": "dedicated", "operator": "Exists"}
    pod = {"spec": {"tolerations": [toleration]}}
    merged = merge_pod(pod, {"spec": {"tolerations": []}}, fragment_wins=False)
    assert merged["spec"]["tolerations"] == [toleration]


def test_a_value_of_another_shape_replaces_or_is_kept_whole() -> None:
    pod = {"spec": {"nodeSelector": {"pool": "a"}, "tolerations": "bogus", "hostNetwork": True}}
    fragment = {"spec": {"nodeSelector": "x", "tolerations": [{"key": "t"}],
                         "hostNetwork": {"x": 1}}}
    assert merge_pod(pod, fragment) == fragment
    assert merge_pod(pod, fragment, fragment_wins=False) == pod


def test_a_fragment_that_is_not_a_map_gives_a_map() -> None:
    assert merge_pod({"spec": {}}, ["not", "a", "pod"]) == {}


def test_null_removes_a_missing_field_quietly_and_later_fields_still_apply() -> None:
    merged = merge_pod({"spec": {"hostNetwork": True}},
                       {"spec": {"nodeName": None, "hostNetwork": None,
                                 "priorityClassName": "batch"}})
    assert merged == {"spec": {"priorityClassName": "batch"}}


def test_a_port_without_protocol_is_the_tcp_port_of_that_number() -> None:
    pod = {"spec": {"containers": [{"name": "base", "image": "x", "ports": [
        {"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 8080, "protocol": "UDP"}]}]}}
    fragment = {"spec": {"containers": [{"name": "base", "ports": [
        {"containerPort": 8080, "name": "http"}]}]}}
    ports = merge_pod(pod, fragment)["spec"]["containers"][0]["ports"]
    assert ports == [{"containerPort": 8080, "protocol": "TCP", "name": "http"},
                     {"containerPort": 8080, "protocol": "UDP"}]


def test_star_keeps_every_name_overrides_every_value_and_later_entries_still_apply() -> None:
    pod = {"spec": {"containers": [
        {"name": "base", "image": "a", "securityContext": {"runAsUser": 0}},
        {"name": "git-sync", "image": "b"}]}}
    fragment = {"spec": {"containers": [
        {"name": "*", "securityContext": {"runAsUser": 1000}},
        {"name": "vault-agent", "image": "vault:1.15"},
        {"name": "base", "env": [{"name": "A", "value": "1"}]}]}}
    containers = merge_pod(pod, fragment)["spec"]["containers"]
    assert containers == [
        {"name": "base", "image": "a", "securityContext": {"runAsUser": 1000},
         "env": [{"name": "A", "value": "1"}]},
        {"name": "git-sync", "image": "b", "securityContext": {"runAsUser": 1000}},
        {"name": "vault-agent", "image": "vault:1.15", "securityContext": {"runAsUser": 1000}},
    ]


def test_a_star_entry_with_an_image_never_adds_a_container_named_star() -> None:
    pod = {"spec": {"containers": [{"name": "base", "image": "a"}]}}
    merged = merge_pod(pod, {"spec": {"containers": [{"name": "*", "image": "b"}]}})
    assert merged["spec"]["containers"] == [{"name": "base", "image": "b"}]


def test_a_star_entry_in_a_template_only_fills_defaults() -> None:
    pod = {"spec": {"containers": [{"name": "base", "image": "a",
                                    "securityContext": {"runAsUser": 5}}]}}
    template = {"spec": {"containers": [{"name": "*", "securityContext": {
        "runAsUser": 1000, "runAsNonRoot": True}}]}}
    merged = merge_pod(pod, template, fragment_wins=False)
    assert merged["spec"]["containers"][0]["securityContext"] == {"runAsUser": 5,
                                                                  "runAsNonRoot": True}


@pytest.mark.parametrize("fragment_wins", [False, True])
def test_a_pod_without_init_containers_gets_only_whole_ones(fragment_wins: bool) -> None:
    # The official Airflow chart's pods without git-sync have no initContainers at all: a
    # "*" entry or a named entry without image (a default for git-sync-init) must not become
    # a container there, while an entry with an image is a whole container and is added.
    pod = {"spec": {"containers": [{"name": "base", "image": "a"}]}}
    defaults = [{"name": "*", "securityContext": {"runAsNonRoot": True}},
                {"name": "git-sync-init", "resources": {"limits": {"memory": "256Mi"}}}]
    merged = merge_pod(pod, {"spec": {"initContainers": defaults}}, fragment_wins=fragment_wins)
    assert merged == pod
    whole = {"name": "init", "image": "busybox"}
    merged = merge_pod(pod, {"spec": {"initContainers": [*defaults, whole]}},
                       fragment_wins=fragment_wins)
    assert merged["spec"]["initContainers"] == [
        {"name": "init", "image": "busybox", "securityContext": {"runAsNonRoot": True}}]


@pytest.mark.parametrize(("fragment_wins", "user"), [(False, 5), (True, 1000)])
def test_star_on_a_list_the_pod_lacks_wins_as_its_fragment_does(fragment_wins: bool,
                                                                 user: int) -> None:
    # A profile's "*" overrides what its own new init container says; a template's only fills.
    pod = {"spec": {"containers": [{"name": "base", "image": "a"}]}}
    fragment = {"spec": {"initContainers": [
        {"name": "init", "image": "busybox", "securityContext": {"runAsUser": 5}},
        {"name": "*", "securityContext": {"runAsUser": 1000}}]}}
    merged = merge_pod(pod, fragment, fragment_wins=fragment_wins)
    assert merged["spec"]["initContainers"] == [
        {"name": "init", "image": "busybox", "securityContext": {"runAsUser": user}}]


def test_an_empty_container_list_of_a_fragment_is_set_as_before() -> None:
    pod = {"spec": {"containers": [{"name": "base", "image": "a"}]}}
    assert merge_pod(pod, {"spec": {"initContainers": []}})["spec"]["initContainers"] == []


def test_the_same_new_item_twice_in_one_fragment_is_added_once() -> None:
    fragment = {"spec": {"containers": [{"name": "base", "env": [
        {"name": "C", "value": "1"}, {"name": "C", "value": "2"}]}]}}
    env = merge_pod(base_pod(), fragment)["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"},
                   {"name": "C", "value": "2"}]


def test_a_keyed_list_with_an_unkeyed_item_on_either_side_is_replaced_whole() -> None:
    keyed = [{"name": "logs", "emptyDir": {}}]
    unkeyed = [{"emptyDir": {}}]
    assert merge_pod({"spec": {"volumes": keyed}},
                     {"spec": {"volumes": unkeyed}})["spec"]["volumes"] == unkeyed
    assert merge_pod({"spec": {"volumes": unkeyed}},
                     {"spec": {"volumes": keyed}})["spec"]["volumes"] == keyed
    assert merge_pod({"spec": {"volumes": keyed}}, {"spec": {"volumes": unkeyed}},
                     fragment_wins=False)["spec"]["volumes"] == keyed
    strings = {"spec": {"volumes": ["x"]}}
    assert merge_pod({"spec": {"volumes": keyed}}, strings)["spec"]["volumes"] == ["x"]


def test_a_list_of_maps_with_no_merge_key_is_replaced_whole() -> None:
    def affinity(*keys: str) -> dict:
        return {"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": k, "operator": "Exists"}]} for k in keys]}}}}}

    assert merge_pod(affinity("a", "b"), affinity("c")) == affinity("c")


def test_set_lists_compare_items_as_json_values_whatever_their_key_order() -> None:
    base = {"spec": {"tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b"}],
                     "containers": [{"name": "base", "envFrom": [
                         {"configMapRef": {"name": "x", "optional": True}}]}]}}
    fragment = {"spec": {"tolerations": [{"operator": "Exists", "key": "a"}, {"key": "c"}],
                         "containers": [{"name": "base", "envFrom": [
                             {"configMapRef": {"optional": True, "name": "x"}},
                             {"secretRef": {"name": "y"}}]}]}}
    merged = merge_pod(base, fragment)
    assert merged["spec"]["tolerations"] == [{"key": "a", "operator": "Exists"}, {"key": "b"},
                                             {"key": "c"}]
    assert merged["spec"]["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "x", "optional": True}}, {"secretRef": {"name": "y"}}]


def test_merging_a_long_set_list_is_linear_in_its_length() -> None:
    """60,000 tolerations and a 2,000-item override: the work is one pass over each (a scan
    of the pod's list per override item took 10 s); counted by equality checks, not timed."""
    compared = 0

    class Counted(dict):
        def __eq__(self, other: object) -> bool:
            nonlocal compared
            compared += 1
            return dict.__eq__(self, other)

        __hash__ = None  # type: ignore[assignment]

    base = {"spec": {"tolerations": [Counted(key=f"k{i}") for i in range(60_000)]}}
    fragment = {"spec": {"tolerations": [Counted(key=f"o{i}") for i in range(2_000)]}}
    merged = merge_pod(base, fragment)
    assert len(merged["spec"]["tolerations"]) == 62_000
    assert compared == 0  # items are found by hash, never compared one by one
