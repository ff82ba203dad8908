"""Each Airflow rule, passing and failing, on realistic executor and KPO pods."""

from __future__ import annotations

import copy
import json

import pytest

from tests.support.paths import AIRFLOW_PODS
from webhook.policy.schema import SPEC_SCHEMAS
from webhook.validation.airflow_rules import (
    AIRFLOW_RULES,
    check_automount_token,
    check_host_paths,
    check_images,
    check_node_selectors,
    check_resources,
    check_service_accounts,
    check_tolerations,
    evaluate_rules,
    normalise_registry_prefix,
    parse_image,
)

FIXTURES = AIRFLOW_PODS  # copies of ../shared/fixtures/airflow-pods


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def executor() -> dict:
    return load("airflow2-executor-pod-override.json")


def kpo_xcom() -> dict:
    return load("airflow3-kpo-xcom.json")


def messages(found) -> list[str]:
    return [v.message for v in found]


def test_registry_ids_are_the_schema_rule_ids():
    schema_ids = set(SPEC_SCHEMAS["ValidationPolicy"]["properties"]["rules"]["properties"])
    assert set(AIRFLOW_RULES) == schema_ids


# ---- images


@pytest.mark.parametrize(("image", "name", "tag", "digest"), [
    ("alpine", "docker.io/library/alpine", "", ""),
    ("apache/airflow:2.10.5", "docker.io/apache/airflow", "2.10.5", ""),
    ("ghcr.io/acme/ml:2.3", "ghcr.io/acme/ml", "2.3", ""),
    ("localhost:5000/tools/x", "localhost:5000/tools/x", "", ""),
    ("registry.example.com:5000/a/b:1@sha256:abc", "registry.example.com:5000/a/b", "1",
     "sha256:abc"),
    ("index.docker.io/library/alpine:3", "docker.io/library/alpine", "3", ""),
    ("localhost/tools/x:1", "localhost/tools/x", "1", ""),
    # A colon before the last slash is no tag, even in a reference Docker would refuse.
    ("ghcr.io/a:b/c", "ghcr.io/a:b/c", "", ""),
])
def test_images_are_read_as_docker_reads_them(image, name, tag, digest):
    ref = parse_image(image)
    assert (ref.name, ref.tag, ref.digest) == (name, tag, digest)


@pytest.mark.parametrize(("prefix", "normalised"), [
    ("ghcr.io/acme/", "ghcr.io/acme"),
    ("apache", "docker.io/apache"),
    ("library", "docker.io/library"),
    ("docker.io/library", "docker.io/library"),
    ("docker.io", "docker.io"),
    ("localhost:5000", "localhost:5000"),
    ("index.docker.io/apache", "docker.io/apache"),
    ("Index.Docker.IO/apache", "docker.io/apache"),
    ("GHCR.io/Acme/", "ghcr.io/Acme"),
    ("ghcr.io/team-X/", "ghcr.io/team-X"),
])
def test_registry_prefixes_default_to_docker_hub(prefix, normalised):
    assert normalise_registry_prefix(prefix) == normalised


def test_docker_hub_short_names_pass_a_docker_io_prefix():
    assert check_images(executor(), {"allowedRegistries": ["docker.io/apache"]}) == []
    assert check_images(executor(), {"allowedRegistries": ["apache"]}) == []


def test_official_images_need_docker_io_library():
    pod = kpo_xcom()
    pod["spec"]["containers"][1]["image"] = "alpine"
    params = {"allowedRegistries": ["ghcr.io/acme"]}
    assert messages(check_images(pod, params)) == [
        'spec.containers[airflow-xcom-sidecar].image must come from an allowed registry '
        '(ghcr.io/acme); it is read as docker.io/library/alpine, got "alpine" (airflow: images)'
    ]
    assert check_images(pod, {"allowedRegistries": ["ghcr.io/acme", "docker.io/library"]}) == []


def test_registry_prefix_matches_whole_path_segments():
    pod = kpo_xcom()
    pod["spec"]["containers"][0]["image"] = "ghcr.io/acme-evil/ml:2.3"
    found = check_images(pod, {"allowedRegistries": ["ghcr.io/acme", "docker.io/library"]})
    assert [v.path for v in found] == ["spec.containers[base].image"]


def test_every_container_kind_is_checked():
    pod = executor()
    pod["spec"]["initContainers"] = [{"name": "git-sync", "image": "quay.io/git-sync:v4"}]
    pod["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "busybox:1"}]
    found = check_images(pod, {"allowedRegistries": ["docker.io/apache"]})
    assert [v.path for v in found] == ["spec.initContainers[git-sync].image",
                                       "spec.ephemeralContainers[debug].image"]


@pytest.mark.parametrize(("image", "ok"), [
    ("apache/airflow:2.10.5", True),
    ("apache/airflow:latest", False),
    ("apache/airflow", False),
    ("apache/airflow@sha256:0123", True),
    ("apache/airflow:latest@sha256:0123", True),
    ("localhost:5000/airflow", False),
    ("localhost:5000/airflow:3", True),
])
def test_forbid_latest_tag(image, ok):
    pod = executor()
    pod["spec"]["containers"][0]["image"] = image
    found = check_images(pod, {"forbidLatestTag": True})
    assert (found == []) is ok
    if not ok:
        assert found[0].path == "spec.containers[base].image"
        assert "must be pinned to a version tag or a digest" in found[0].message


def test_images_off_when_params_say_nothing():
    pod = executor()
    pod["spec"]["containers"][0]["image"] = "evil.example.com/x:latest"
    assert check_images(pod, {}) == []


# ---- resources


def test_resources_required_and_present():
    params = {"requireRequests": ["cpu", "memory"], "requireLimits": ["memory"]}
    assert check_resources(executor(), params) == []


def test_resources_missing_name_the_container_and_field():
    params = {"requireRequests": ["cpu", "memory"], "requireLimits": ["memory"]}
    found = check_resources(load("airflow2-executor.json"), params)
    assert messages(found) == [
        "spec.containers[base].resources.requests.cpu must be set, got <unset> "
        "(airflow: resources)",
        "spec.containers[base].resources.requests.memory must be set, got <unset> "
        "(airflow: resources)",
        "spec.containers[base].resources.limits.memory must be set, got <unset> "
        "(airflow: resources)",
    ]


def test_a_limit_counts_as_the_request_as_kubernetes_defaults_it():
    pod = load("airflow2-executor.json")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert check_resources(pod, {"requireRequests": ["cpu", "memory"]}) == []


def test_xcom_sidecar_is_held_to_the_same_limits():
    found = check_resources(kpo_xcom(), {"requireLimits": ["memory"]})
    assert [v.path for v in found] == [
        "spec.containers[base].resources.limits.memory",
        "spec.containers[airflow-xcom-sidecar].resources.limits.memory",
    ]


def test_resource_bounds_compare_quantities():
    pod = executor()
    assert check_resources(pod, {"maxLimits": {"memory": "2048Mi"}}) == []
    found = check_resources(pod, {"maxLimits": {"memory": "1.5Gi"}, "maxRequests": {"cpu": 2}})
    assert messages(found) == [
        'spec.containers[base].resources.limits.memory must be at most 1.5Gi, got "2Gi" '
        "(airflow: resources)"
    ]


def test_a_bound_on_a_resource_the_container_lacks_does_not_end_the_check():
    pod = executor()  # base: no cpu limit, memory limit 2Gi
    found = check_resources(pod, {"maxLimits": {"cpu": "1", "memory": "1Gi"}})
    assert messages(found) == [
        'spec.containers[base].resources.limits.memory must be at most 1Gi, got "2Gi" '
        "(airflow: resources)"
    ]


def test_extended_resource_names_are_bracketed():
    pod = executor()
    pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "8"
    found = check_resources(pod, {"maxLimits": {"nvidia.com/gpu": "4"}})
    assert [v.path for v in found] == ["spec.containers[base].resources.limits[nvidia.com/gpu]"]
    # The limit is also the request (API defaulting), so a request bound sees it too.
    found = check_resources(pod, {"maxRequests": {"nvidia.com/gpu": "4"}})
    assert [v.path for v in found] == [
        "spec.containers[base].resources.requests[nvidia.com/gpu]"]


def test_an_unreadable_quantity_is_over_any_bound():
    pod = executor()
    pod["spec"]["containers"][0]["resources"]["limits"]["memory"] = "lots"
    found = check_resources(pod, {"maxLimits": {"memory": "4Gi"}})
    assert found and found[0].value == '"lots"'


# ---- serviceAccounts


def test_service_account_allowed_and_not():
    assert check_service_accounts(executor(), {"allowed": ["airflow-worker"]}) == []
    assert check_service_accounts(executor(), {"allowed": ["airflow-*"]}) == []
    found = check_service_accounts(executor(), {"allowed": ["etl"]})
    assert messages(found) == [
        'spec.serviceAccountName must be one of etl, got "airflow-worker" '
        "(airflow: serviceAccounts)"
    ]


def test_unset_service_account_is_default():
    found = check_service_accounts(kpo_xcom(), {"allowed": ["airflow-worker"]})
    assert found[0].value == '"default"'
    assert check_service_accounts(kpo_xcom(), {"allowed": ["default"]}) == []


# ---- hostPaths


def with_host_path(path: object) -> dict:
    pod = executor()
    pod["spec"]["volumes"].append({"name": "data", "hostPath": {"path": path}})
    return pod


@pytest.mark.parametrize(("path", "ok"), [
    ("/data", True),
    ("/data/airflow", True),
    ("/database", False),
    ("/data/../etc", False),
    ("/etc", False),
    ("data", False),
    (None, False),
])
def test_host_path_prefixes_are_path_segment_aware(path, ok):
    found = check_host_paths(with_host_path(path), {"allowedPrefixes": ["/data/"]})
    assert (found == []) is ok
    if not ok:
        assert found[0].path == "spec.volumes[data].hostPath.path"
        assert found[0].rule == "airflow: hostPaths"


def test_no_host_path_no_violation():
    assert check_host_paths(executor(), {"allowedPrefixes": []}) == []
    found = check_host_paths(with_host_path("/data"), {"allowedPrefixes": []})
    assert "(no host path allowed)" in found[0].message


# ---- nodeSelectors


def test_node_selectors():
    pod = executor()
    pod["spec"]["nodeSelector"] = {"node-pool": "highmem", "kubernetes.io/os": "linux"}
    params = {"allowed": {"node-pool": ["default", "highmem"], "kubernetes.io/os": ["linux"]}}
    assert check_node_selectors(pod, params) == []
    pod["spec"]["nodeSelector"]["node-pool"] = "system"
    pod["spec"]["nodeSelector"]["topology.kubernetes.io/zone"] = "a"
    assert messages(check_node_selectors(pod, params)) == [
        'spec.nodeSelector.node-pool must be one of default, highmem, got "system" '
        "(airflow: nodeSelectors)",
        "spec.nodeSelector[topology.kubernetes.io/zone] must not be set (allowed keys: "
        'kubernetes.io/os, node-pool), got "a" (airflow: nodeSelectors)',
    ]


# ---- tolerations


def test_tolerations():
    params = {"allowedKeys": ["dedicated"]}
    assert check_tolerations(executor(), params) == []
    pod = executor()
    pod["spec"]["tolerations"].append({"operator": "Exists"})  # tolerates every taint
    pod["spec"]["tolerations"].append({"key": "node-role.kubernetes.io/control-plane",
                                       "operator": "Exists"})
    assert messages(check_tolerations(pod, params)) == [
        'spec.tolerations[1].key must be one of dedicated, got "" (airflow: tolerations)',
        'spec.tolerations[2].key must be one of dedicated, got '
        '"node-role.kubernetes.io/control-plane" (airflow: tolerations)',
    ]


def test_tolerations_the_api_server_adds_are_always_allowed():
    pod = executor()
    pod["spec"]["tolerations"] += [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
    ]
    assert check_tolerations(pod, {"allowedKeys": ["dedicated"]}) == []


# ---- automountServiceAccountToken


def test_automount_token():
    pod = executor()
    assert messages(check_automount_token(pod, {"allowed": False})) == [
        "spec.automountServiceAccountToken must be false, got <unset> "
        "(airflow: automountServiceAccountToken)"
    ]
    pod["spec"]["automountServiceAccountToken"] = True
    assert check_automount_token(pod, {"allowed": False})[0].value == "true"
    assert check_automount_token(pod, {"allowed": True}) == []
    pod["spec"]["automountServiceAccountToken"] = False
    assert check_automount_token(pod, {"allowed": False}) == []


# ---- all rules on malformed pods


MALFORMED = [
    {},
    {"spec": None},
    {"spec": "x"},
    {"spec": {"containers": None, "volumes": "x", "tolerations": [1, None],
              "nodeSelector": ["a"]}},
    {"spec": {"containers": [None, "base", {"name": 3, "image": 7, "resources": "big"}]}},
    {"spec": {"containers": [{"name": "b", "image": "x",
                              "resources": {"limits": ["1"], "requests": {"cpu": None}}}]}},
]
ALL_PARAMS = {
    "images": {"allowedRegistries": ["docker.io/apache"], "forbidLatestTag": True},
    "resources": {"requireRequests": ["cpu"], "requireLimits": ["memory"],
                  "maxRequests": {"cpu": "1"}, "maxLimits": {"memory": "1Gi"}},
    "serviceAccounts": {"allowed": ["airflow-worker"]},
    "hostPaths": {"allowedPrefixes": ["/data"]},
    "nodeSelectors": {"allowed": {"node-pool": ["a"]}},
    "tolerations": {"allowedKeys": ["dedicated"]},
    "automountServiceAccountToken": {"allowed": False},
}


@pytest.mark.parametrize("pod", MALFORMED)
def test_malformed_pods_are_judged_not_crashed_on(pod):
    found = evaluate_rules(copy.deepcopy(pod), ALL_PARAMS)
    assert all(v.requirement != "must be readable by the Airflow rules" for v in found)
    # Kubernetes would default an unset service account to "default": judged as such.
    assert any(v.rule == "airflow: serviceAccounts" and v.value == '"default"' for v in found)


def test_evaluate_rules_is_sorted_and_deduplicated():
    found = evaluate_rules(load("airflow2-executor.json"), ALL_PARAMS)
    assert found == sorted(set(found))
    assert {v.rule for v in found} == {"airflow: resources",
                                       "airflow: automountServiceAccountToken"}


# ---- exact answers, pinned by mutation testing (docs/testing.md)


def pod_with(**spec) -> dict:
    return {"spec": spec}


def test_image_messages_name_the_container_the_reason_and_the_rule():
    pod = pod_with(containers=[{"name": "init"}, {"image": "evil.example.com/x:latest"},
                               {"name": "c", "image": "alpine"}])
    assert messages(check_images(pod, {"allowedRegistries": [], "forbidLatestTag": True})) == [
        "spec.containers[1].image must come from an allowed registry (none allowed); it is "
        'read as evil.example.com/x, got "evil.example.com/x:latest" (airflow: images)',
        'spec.containers[1].image must be pinned to a version tag or a digest, not :latest, '
        'got "evil.example.com/x:latest" (airflow: images)',
        "spec.containers[c].image must come from an allowed registry (none allowed); it is "
        'read as docker.io/library/alpine, got "alpine" (airflow: images)',
        'spec.containers[c].image must be pinned to a version tag or a digest (no tag means '
        ':latest), got "alpine" (airflow: images)',
    ]
    found = check_images(pod, {"allowedRegistries": ["ghcr.io/a", "quay.io"]})
    assert "(ghcr.io/a, quay.io)" in found[0].message


def test_a_container_that_cannot_be_read_does_not_stop_the_others_being_judged():
    pod = pod_with(containers=["x", {"name": "b", "image": "evil.example.com/x:1"}])
    assert [v.path for v in check_images(pod, {"allowedRegistries": ["ghcr.io"]})] == [
        "spec.containers[b].image"]


def test_ephemeral_containers_need_no_resources():
    pod = pod_with(containers=[{"name": "base", "resources": {"limits": {"memory": "1Gi"}}}],
                   ephemeralContainers=[{"name": "debug"}, {"name": "debug2"}])
    assert check_resources(pod, {"requireLimits": ["memory"]}) == []


def test_every_bound_is_checked_whatever_comes_before_it():
    pod = pod_with(containers=[{"name": "base", "resources": {"limits": {"cpu": "1",
                                                                         "memory": "2Gi"}}}])
    for bounds in ({"cpu": "1", "memory": "1Gi"}, {"cpu": "bogus", "memory": "1Gi"}):
        assert messages(check_resources(pod, {"maxLimits": bounds})) == [
            'spec.containers[base].resources.limits.memory must be at most 1Gi, got "2Gi" '
            "(airflow: resources)"]


def test_a_boolean_is_no_quantity():
    pod = pod_with(containers=[{"name": "base", "resources": {"limits": {"cpu": True}}}])
    found = check_resources(pod, {"maxLimits": {"cpu": "4"}})
    assert [(v.path, v.value) for v in found] == [
        ("spec.containers[base].resources.limits.cpu", "true")]


def test_service_account_messages_and_the_deprecated_field():
    assert messages(check_service_accounts(pod_with(serviceAccount="legacy"),
                                           {"allowed": ["etl", "batch"]})) == [
        'spec.serviceAccountName must be one of etl, batch, got "legacy" '
        "(airflow: serviceAccounts)"]
    assert messages(check_service_accounts(pod_with(), {"allowed": []})) == [
        'spec.serviceAccountName must be one of (none allowed), got "default" '
        "(airflow: serviceAccounts)"]
    assert check_service_accounts(pod_with(serviceAccount="legacy"), {"allowed": ["legacy"]}) == []


def test_automount_token_reports_a_non_boolean_as_unset():
    found = check_automount_token(pod_with(automountServiceAccountToken="false"),
                                  {"allowed": False})
    assert [v.value for v in found] == ["<unset>"]


@pytest.mark.parametrize(("path", "prefixes", "ok"), [
    ("/etc", ["/"], True),
    ("data", ["/"], False),  # a relative host path is never under a prefix
    ("/etc", ["data"], False),  # nor is anything under a relative prefix
    ("/data/../data/x", ["/data"], False),  # `..` is refused even when it lands inside
])
def test_host_path_edge_cases(path, prefixes, ok):
    assert (check_host_paths(with_host_path(path), {"allowedPrefixes": prefixes}) == []) is ok


def test_host_path_message_and_every_volume_judged():
    pod = pod_with(volumes=[{"name": "ok", "hostPath": {"path": "/data/x"}}, "junk",
                            {"hostPath": {"path": "/etc"}}])
    assert messages(check_host_paths(pod, {"allowedPrefixes": ["/data", "/scratch"]})) == [
        'spec.volumes[2].hostPath.path must lie under /data, /scratch, got "/etc" '
        "(airflow: hostPaths)"]
    assert messages(check_host_paths(pod, {"allowedPrefixes": []}))[-1] == (
        'spec.volumes[2].hostPath.path must lie under (no host path allowed), got "/etc" '
        "(airflow: hostPaths)")


def test_node_selector_keys_are_reported_sorted_and_bracketed_when_dotted():
    pod = pod_with(nodeSelector={"zone": "a", "disk.type": "ssd", "team/x": "y", "app": "b"})
    assert messages(check_node_selectors(pod, {"allowed": {}})) == [
        'spec.nodeSelector.app must not be set (allowed keys: none), got "b" '
        "(airflow: nodeSelectors)",
        'spec.nodeSelector[disk.type] must not be set (allowed keys: none), got "ssd" '
        "(airflow: nodeSelectors)",
        'spec.nodeSelector[team/x] must not be set (allowed keys: none), got "y" '
        "(airflow: nodeSelectors)",
        'spec.nodeSelector.zone must not be set (allowed keys: none), got "a" '
        "(airflow: nodeSelectors)",
    ]


def test_node_selector_keys_that_are_not_strings_are_judged_not_crashed_on():
    pod = pod_with(nodeSelector={2: "a", "b": "c"})
    assert [v.path for v in check_node_selectors(pod, {"allowed": {}})] == [
        "spec.nodeSelector.2", "spec.nodeSelector.b"]


def test_tolerations_every_one_is_judged_and_no_execute_alone_is_no_pass():
    pod = pod_with(tolerations=["junk", {"key": "dedicated", "operator": "Exists"},
                                {"key": "evil", "operator": "Exists", "effect": "NoExecute"}])
    added = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
    assert [v.path for v in check_tolerations(pod_with(tolerations=[added, {"key": "x"}]),
                                              {"allowedKeys": []})] == ["spec.tolerations[1].key"]
    assert messages(check_tolerations(pod, {"allowedKeys": ["dedicated", "spot*"]})) == [
        'spec.tolerations[2].key must be one of dedicated, spot*, got "evil" '
        "(airflow: tolerations)"]
    assert messages(check_tolerations(pod, {"allowedKeys": []}))[0] == (
        'spec.tolerations[1].key must be one of (none allowed), got "dedicated" '
        "(airflow: tolerations)")


def test_each_rule_reads_a_pod_that_is_not_a_map_as_empty():
    assert check_service_accounts(None, {"allowed": ["default"]}) == []
    assert check_images(None, {"allowedRegistries": []}) == []


def test_an_unknown_rule_id_is_skipped_and_the_rest_still_run():
    found = evaluate_rules(pod_with(), {"bogus": {}, "serviceAccounts": {"allowed": []}})
    assert [v.rule for v in found] == ["airflow: serviceAccounts"]


def test_a_rule_that_crashes_fails_closed_with_its_own_name(monkeypatch):
    from webhook.validation import airflow_rules

    def boom(pod, params):
        raise RuntimeError("bug")

    monkeypatch.setitem(airflow_rules.AIRFLOW_RULES, "images", boom)
    found = evaluate_rules(pod_with(), {"images": {}, "hostPaths": None})
    assert messages(found) == [
        'spec must be readable by the Airflow rules, got "RuntimeError" (airflow: images)']
