"""The merge rules, told as the surprises Airflow users hit with pod_override."""

from webhook.merge import merge_pod


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
