"""Violations name the field a DAG author must change, and say what must hold."""

from __future__ import annotations

from typing import Any

from webhook.podsecurity import evaluate_pod


def _messages(pod: dict[str, Any], level: str = "restricted") -> list[str]:
    return [v.message for v in evaluate_pod(pod, level)]


def _pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": spec}


GOOD_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
GOOD_POD_SC = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def test_brief_example_message() -> None:
    assert _messages(_pod(containers=[{"name": "base"}]))[0] == (
        "spec.containers[base].securityContext.allowPrivilegeEscalation must be false, "
        "got <unset> (restricted: allowPrivilegeEscalation)")


def test_every_container_kind_is_named_by_name() -> None:
    pod = _pod(
        securityContext=GOOD_POD_SC,
        initContainers=[{"name": "init", "securityContext": {**GOOD_SC, "privileged": True}}],
        containers=[{"name": "base", "securityContext": GOOD_SC}],
        ephemeralContainers=[{"name": "dbg", "securityContext": {
            "capabilities": {"drop": ["ALL"]}}}],
    )
    assert _messages(pod) == [
        "spec.ephemeralContainers[dbg].securityContext.allowPrivilegeEscalation must be false, "
        "got <unset> (restricted: allowPrivilegeEscalation)",
        "spec.initContainers[init].securityContext.privileged must be unset or false, "
        "got true (baseline: privileged)",
    ]


def test_run_as_non_root_reports_each_container_with_the_pod_level_fix() -> None:
    pod = _pod(securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
               containers=[{"name": "a", "securityContext": GOOD_SC},
                           {"name": "b", "securityContext": {**GOOD_SC, "runAsNonRoot": False}},
                           {"name": "c", "securityContext": {**GOOD_SC, "runAsNonRoot": True}}])
    assert _messages(pod) == [
        "spec.containers[a].securityContext.runAsNonRoot must be true (or set "
        "spec.securityContext.runAsNonRoot=true), got <unset> (restricted: runAsNonRoot)",
        "spec.containers[b].securityContext.runAsNonRoot must be true or unset, got false "
        "(restricted: runAsNonRoot)",
    ]


def test_pod_level_false_is_reported_even_when_containers_say_true() -> None:
    pod = _pod(securityContext={**GOOD_POD_SC, "runAsNonRoot": False},
               containers=[{"name": "a", "securityContext": {**GOOD_SC, "runAsNonRoot": True}}])
    assert _messages(pod) == [
        "spec.securityContext.runAsNonRoot must be true or unset, got false "
        "(restricted: runAsNonRoot)"]


def test_volume_sysctl_and_annotation_paths() -> None:
    pod = {
        "metadata": {"annotations": {
            "container.apparmor.security.beta.kubernetes.io/base": "unconfined"}},
        "spec": {
            "securityContext": {"sysctls": [{"name": "kernel.foo", "value": "1"}]},
            "containers": [{"name": "base"}],
            "volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}],
        },
    }
    assert _messages(pod, "baseline") == [
        'metadata.annotations[container.apparmor.security.beta.kubernetes.io/base] must be '
        '"runtime/default", "localhost/<profile>" or empty, got "unconfined" '
        "(baseline: appArmorProfile)",
        "spec.securityContext.sysctls[kernel.foo] must be one of: kernel.shm_rmid_forced, "
        "net.ipv4.ip_local_port_range, net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, "
        "net.ipv4.ip_unprivileged_port_start, net.ipv4.ip_local_reserved_ports, "
        "net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl, "
        "net.ipv4.tcp_keepalive_probes, net.ipv4.tcp_rmem, net.ipv4.tcp_wmem, "
        'got "kernel.foo" (baseline: sysctls)',
        'spec.volumes[logs].hostPath must be unset, got {"path":"/var/log"} '
        "(baseline: hostPathVolumes)",
    ]
    restricted = [m for m in _messages(pod) if "volumes" in m]
    assert restricted == [
        "spec.volumes[logs] must be one of: configMap, csi, downwardAPI, emptyDir, ephemeral, "
        'image, persistentVolumeClaim, projected, secret, got "hostPath" '
        "(restricted: restrictedVolumes)"]


def test_capabilities_messages() -> None:
    pod = _pod(securityContext=GOOD_POD_SC, containers=[{"name": "base", "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["all"], "add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}}])
    assert _messages(pod) == [
        'spec.containers[base].securityContext.capabilities.add must be unset or only contain '
        '"NET_BIND_SERVICE", got ["SYS_ADMIN"] (restricted: capabilities_restricted)',
        'spec.containers[base].securityContext.capabilities.drop must contain "ALL", '
        'got ["all"] (restricted: capabilities_restricted)',
    ]


def test_results_are_sorted_and_deduplicated() -> None:
    # Two containers with the same name produce the same violation once.
    pod = _pod(containers=[{"name": "x", "securityContext": {"privileged": True}}] * 2)
    found = evaluate_pod(pod, "baseline")
    assert [v.path for v in found] == ["spec.containers[x].securityContext.privileged"]
    full = evaluate_pod(pod, "restricted")
    assert full == sorted(set(full))


def test_unnamed_entries_are_named_by_index() -> None:
    pod = _pod(containers=[{"ports": [{"containerPort": 80, "hostPort": 80}]}])
    assert _messages(pod, "baseline") == [
        "spec.containers[0].ports[0].hostPort must be unset or 0, got 80 (baseline: hostPorts)"]


def test_probe_hosts_are_reported_per_field() -> None:
    pod = _pod(containers=[{"name": "base", "lifecycle": {
        "preStop": {"httpGet": {"host": "10.0.0.1", "port": 80}}}}])
    assert _messages(pod, "baseline") == [
        'spec.containers[base].lifecycle.preStop.httpGet.host must be unset or empty, '
        'got "10.0.0.1" (baseline: hostProbesAndHostLifecycle)']
