"""Violations name the field a DAG author must change, and say what must hold."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.validation.podsecurity import evaluate_pod


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


# ---- every message of every check, at each place and version (pinned by mutation testing:
# a wrong path, requirement, value or rule, or a loop that stops early, changes one of them)

BAD_SC = {
    "seLinuxOptions": {"type": "spc_t", "user": "u", "role": "r"},
    "seccompProfile": {"type": "Unconfined"},
    "appArmorProfile": {"type": "Unconfined"},
    "windowsOptions": {"hostProcess": True},
    "runAsUser": 0,
}
POD_LEVEL = {
    "metadata": {"annotations": {
        "container.apparmor.security.beta.kubernetes.io/base": "unconfined",
        "container.apparmor.security.beta.kubernetes.io/side": "",
        "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/base": "docker/default",
        "container.seccomp.security.alpha.kubernetes.io/ghost": "unconfined",
    }},
    "spec": {
        "hostNetwork": True, "hostPID": True, "hostIPC": False,
        "securityContext": {**BAD_SC, "runAsNonRoot": False},
        "containers": [{"name": "base", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    },
}
CONTAINER_LEVEL = {
    "metadata": {"annotations": {
        "container.seccomp.security.alpha.kubernetes.io/init": "unconfined"}},
    "spec": {
        "volumes": ["junk", {"name": "empty"}, {"name": "hp", "hostPath": {"path": "/"}},
                    {"hostPath": {"path": "/x"}}, {"name": "share", "nfs": {"server": "s"}},
                    {"name": "weird", "fancy": {}}, {"name": "ok", "emptyDir": {}}],
        "initContainers": [{"name": "init", "securityContext": {
            **BAD_SC, "procMount": "Unmasked", "privileged": True,
            "allowPrivilegeEscalation": True,
            "capabilities": {"add": ["SYS_ADMIN", "CHOWN", "NET_BIND_SERVICE"], "drop": ["all"]}}}],
        "containers": [
            {"name": "base", "startupProbe": {"httpGet": {"host": "h1"}},
             "readinessProbe": {"tcpSocket": {"host": "h2"}},
             "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "side", "securityContext": {
                "seLinuxOptions": {"type": "container_engine_t"}, "procMount": "Default"}},
        ],
    },
}

EXPECTED = {
    ("POD_LEVEL", "baseline", "v1.0"): [
        'metadata.annotations[container.apparmor.security.beta.kubernetes.io/base] must '
        'be "runtime/default", "localhost/<profile>" or empty, got "unconfined" '
        '(baseline: appArmorProfile)',
        'metadata.annotations[seccomp.security.alpha.kubernetes.io/pod] must be '
        '"runtime/default", "docker/default" or "localhost/<profile>", got "unconfined" '
        '(baseline: seccompProfile_baseline)',
        'spec.hostNetwork must be unset or false, got true (baseline: hostNamespaces)',
        'spec.hostPID must be unset or false, got true (baseline: hostNamespaces)',
        'spec.securityContext.appArmorProfile.type must be RuntimeDefault or Localhost, '
        'got "Unconfined" (baseline: appArmorProfile)',
        'spec.securityContext.seLinuxOptions.role must be unset or empty, got "r" '
        '(baseline: seLinuxOptions)',
        'spec.securityContext.seLinuxOptions.type must be unset or one of: container_t, '
        'container_init_t, container_kvm_t, got "spc_t" (baseline: seLinuxOptions)',
        'spec.securityContext.seLinuxOptions.user must be unset or empty, got "u" '
        '(baseline: seLinuxOptions)',
        'spec.securityContext.windowsOptions.hostProcess must be unset or false, got '
        'true (baseline: windowsHostProcess)',
    ],
    ("POD_LEVEL", "baseline", "latest"): [
        'metadata.annotations[container.apparmor.security.beta.kubernetes.io/base] must '
        'be "runtime/default", "localhost/<profile>" or empty, got "unconfined" '
        '(baseline: appArmorProfile)',
        'spec.hostNetwork must be unset or false, got true (baseline: hostNamespaces)',
        'spec.hostPID must be unset or false, got true (baseline: hostNamespaces)',
        'spec.securityContext.appArmorProfile.type must be RuntimeDefault or Localhost, '
        'got "Unconfined" (baseline: appArmorProfile)',
        'spec.securityContext.seLinuxOptions.role must be unset or empty, got "r" '
        '(baseline: seLinuxOptions)',
        'spec.securityContext.seLinuxOptions.type must be unset or one of: container_t, '
        'container_init_t, container_kvm_t, container_engine_t, got "spc_t" (baseline: '
        'seLinuxOptions)',
        'spec.securityContext.seLinuxOptions.user must be unset or empty, got "u" '
        '(baseline: seLinuxOptions)',
        'spec.securityContext.seccompProfile.type must be unset, RuntimeDefault or '
        'Localhost, got "Unconfined" (baseline: seccompProfile_baseline)',
        'spec.securityContext.windowsOptions.hostProcess must be unset or false, got '
        'true (baseline: windowsHostProcess)',
    ],
    ("POD_LEVEL", "restricted", "latest"): [
        'metadata.annotations[container.apparmor.security.beta.kubernetes.io/base] must '
        'be "runtime/default", "localhost/<profile>" or empty, got "unconfined" '
        '(baseline: appArmorProfile)',
        'spec.containers[base].securityContext.runAsNonRoot must be true (or set '
        'spec.securityContext.runAsNonRoot=true), got <unset> (restricted: runAsNonRoot)',
        'spec.containers[base].securityContext.seccompProfile.type must be '
        'RuntimeDefault or Localhost (or set spec.securityContext.seccompProfile.type), '
        'got <unset> (restricted: seccompProfile_restricted)',
        'spec.hostNetwork must be unset or false, got true (baseline: hostNamespaces)',
        'spec.hostPID must be unset or false, got true (baseline: hostNamespaces)',
        'spec.securityContext.appArmorProfile.type must be RuntimeDefault or Localhost, '
        'got "Unconfined" (baseline: appArmorProfile)',
        'spec.securityContext.runAsNonRoot must be true or unset, got false (restricted: '
        'runAsNonRoot)',
        'spec.securityContext.runAsUser must be non-zero or unset, got 0 (restricted: '
        'runAsUser)',
        'spec.securityContext.seLinuxOptions.role must be unset or empty, got "r" '
        '(baseline: seLinuxOptions)',
        'spec.securityContext.seLinuxOptions.type must be unset or one of: container_t, '
        'container_init_t, container_kvm_t, container_engine_t, got "spc_t" (baseline: '
        'seLinuxOptions)',
        'spec.securityContext.seLinuxOptions.user must be unset or empty, got "u" '
        '(baseline: seLinuxOptions)',
        'spec.securityContext.seccompProfile.type must be RuntimeDefault or Localhost, '
        'got "Unconfined" (restricted: seccompProfile_restricted)',
        'spec.securityContext.windowsOptions.hostProcess must be unset or false, got '
        'true (baseline: windowsHostProcess)',
    ],
    ("CONTAINER_LEVEL", "baseline", "v1.0"): [
        'metadata.annotations[container.seccomp.security.alpha.kubernetes.io/init] must '
        'be "runtime/default", "docker/default" or "localhost/<profile>", got '
        '"unconfined" (baseline: seccompProfile_baseline)',
        'spec.containers[base].ports[0].hostPort must be unset or 0, got 8080 (baseline: '
        'hostPorts)',
        'spec.containers[side].securityContext.seLinuxOptions.type must be unset or one '
        'of: container_t, container_init_t, container_kvm_t, got "container_engine_t" '
        '(baseline: seLinuxOptions)',
        'spec.initContainers[init].securityContext.appArmorProfile.type must be '
        'RuntimeDefault or Localhost, got "Unconfined" (baseline: appArmorProfile)',
        'spec.initContainers[init].securityContext.capabilities.add must only contain: '
        'AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, '
        'NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT, got '
        '["SYS_ADMIN"] (baseline: capabilities_baseline)',
        'spec.initContainers[init].securityContext.privileged must be unset or false, '
        'got true (baseline: privileged)',
        'spec.initContainers[init].securityContext.procMount must be unset or Default, '
        'got "Unmasked" (baseline: procMount)',
        'spec.initContainers[init].securityContext.seLinuxOptions.role must be unset or '
        'empty, got "r" (baseline: seLinuxOptions)',
        'spec.initContainers[init].securityContext.seLinuxOptions.type must be unset or '
        'one of: container_t, container_init_t, container_kvm_t, got "spc_t" (baseline: '
        'seLinuxOptions)',
        'spec.initContainers[init].securityContext.seLinuxOptions.user must be unset or '
        'empty, got "u" (baseline: seLinuxOptions)',
        'spec.initContainers[init].securityContext.windowsOptions.hostProcess must be '
        'unset or false, got true (baseline: windowsHostProcess)',
        'spec.volumes[3].hostPath must be unset, got {"path":"/x"} (baseline: '
        'hostPathVolumes)',
        'spec.volumes[hp].hostPath must be unset, got {"path":"/"} (baseline: '
        'hostPathVolumes)',
    ],
    ("CONTAINER_LEVEL", "baseline", "latest"): [
        'spec.containers[base].ports[0].hostPort must be unset or 0, got 8080 (baseline: '
        'hostPorts)',
        'spec.containers[base].readinessProbe.tcpSocket.host must be unset or empty, got '
        '"h2" (baseline: hostProbesAndHostLifecycle)',
        'spec.containers[base].startupProbe.httpGet.host must be unset or empty, got '
        '"h1" (baseline: hostProbesAndHostLifecycle)',
        'spec.initContainers[init].securityContext.appArmorProfile.type must be '
        'RuntimeDefault or Localhost, got "Unconfined" (baseline: appArmorProfile)',
        'spec.initContainers[init].securityContext.capabilities.add must only contain: '
        'AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, '
        'NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT, got '
        '["SYS_ADMIN"] (baseline: capabilities_baseline)',
        'spec.initContainers[init].securityContext.privileged must be unset or false, '
        'got true (baseline: privileged)',
        'spec.initContainers[init].securityContext.procMount must be unset or Default '
        '(or set spec.hostUsers=false), got "Unmasked" (baseline: procMount)',
        'spec.initContainers[init].securityContext.seLinuxOptions.role must be unset or '
        'empty, got "r" (baseline: seLinuxOptions)',
        'spec.initContainers[init].securityContext.seLinuxOptions.type must be unset or '
        'one of: container_t, container_init_t, container_kvm_t, container_engine_t, got '
        '"spc_t" (baseline: seLinuxOptions)',
        'spec.initContainers[init].securityContext.seLinuxOptions.user must be unset or '
        'empty, got "u" (baseline: seLinuxOptions)',
        'spec.initContainers[init].securityContext.seccompProfile.type must be unset, '
        'RuntimeDefault or Localhost, got "Unconfined" (baseline: '
        'seccompProfile_baseline)',
        'spec.initContainers[init].securityContext.windowsOptions.hostProcess must be '
        'unset or false, got true (baseline: windowsHostProcess)',
        'spec.volumes[3].hostPath must be unset, got {"path":"/x"} (baseline: '
        'hostPathVolumes)',
        'spec.volumes[hp].hostPath must be unset, got {"path":"/"} (baseline: '
        'hostPathVolumes)',
    ],
    ("CONTAINER_LEVEL", "restricted", "latest"): [
        'spec.containers[base].ports[0].hostPort must be unset or 0, got 8080 (baseline: '
        'hostPorts)',
        'spec.containers[base].readinessProbe.tcpSocket.host must be unset or empty, got '
        '"h2" (baseline: hostProbesAndHostLifecycle)',
        'spec.containers[base].securityContext.allowPrivilegeEscalation must be false, '
        'got <unset> (restricted: allowPrivilegeEscalation)',
        'spec.containers[base].securityContext.capabilities.drop must contain "ALL", got '
        '<unset> (restricted: capabilities_restricted)',
        'spec.containers[base].securityContext.runAsNonRoot must be true (or set '
        'spec.securityContext.runAsNonRoot=true), got <unset> (restricted: runAsNonRoot)',
        'spec.containers[base].securityContext.seccompProfile.type must be '
        'RuntimeDefault or Localhost (or set spec.securityContext.seccompProfile.type), '
        'got <unset> (restricted: seccompProfile_restricted)',
        'spec.containers[base].startupProbe.httpGet.host must be unset or empty, got '
        '"h1" (baseline: hostProbesAndHostLifecycle)',
        'spec.containers[side].securityContext.allowPrivilegeEscalation must be false, '
        'got <unset> (restricted: allowPrivilegeEscalation)',
        'spec.containers[side].securityContext.capabilities.drop must contain "ALL", got '
        '<unset> (restricted: capabilities_restricted)',
        'spec.containers[side].securityContext.runAsNonRoot must be true (or set '
        'spec.securityContext.runAsNonRoot=true), got <unset> (restricted: runAsNonRoot)',
        'spec.containers[side].securityContext.seccompProfile.type must be '
        'RuntimeDefault or Localhost (or set spec.securityContext.seccompProfile.type), '
        'got <unset> (restricted: seccompProfile_restricted)',
        'spec.initContainers[init].securityContext.allowPrivilegeEscalation must be '
        'false, got true (restricted: allowPrivilegeEscalation)',
        'spec.initContainers[init].securityContext.appArmorProfile.type must be '
        'RuntimeDefault or Localhost, got "Unconfined" (baseline: appArmorProfile)',
        'spec.initContainers[init].securityContext.capabilities.add must be unset or '
        'only contain "NET_BIND_SERVICE", got ["CHOWN","SYS_ADMIN"] (restricted: '
        'capabilities_restricted)',
        'spec.initContainers[init].securityContext.capabilities.drop must contain "ALL", '
        'got ["all"] (restricted: capabilities_restricted)',
        'spec.initContainers[init].securityContext.privileged must be unset or false, '
        'got true (baseline: privileged)',
        'spec.initContainers[init].securityContext.procMount must be unset or Default, '
        'got "Unmasked" (restricted: procMount_restricted)',
        'spec.initContainers[init].securityContext.runAsNonRoot must be true (or set '
        'spec.securityContext.runAsNonRoot=true), got <unset> (restricted: runAsNonRoot)',
        'spec.initContainers[init].securityContext.runAsUser must be non-zero or unset, '
        'got 0 (restricted: runAsUser)',
        'spec.initContainers[init].securityContext.seLinuxOptions.role must be unset or '
        'empty, got "r" (baseline: seLinuxOptions)',
        'spec.initContainers[init].securityContext.seLinuxOptions.type must be unset or '
        'one of: container_t, container_init_t, container_kvm_t, container_engine_t, got '
        '"spc_t" (baseline: seLinuxOptions)',
        'spec.initContainers[init].securityContext.seLinuxOptions.user must be unset or '
        'empty, got "u" (baseline: seLinuxOptions)',
        'spec.initContainers[init].securityContext.seccompProfile.type must be '
        'RuntimeDefault or Localhost, got "Unconfined" (restricted: '
        'seccompProfile_restricted)',
        'spec.initContainers[init].securityContext.windowsOptions.hostProcess must be '
        'unset or false, got true (baseline: windowsHostProcess)',
        'spec.volumes[3] must be one of: configMap, csi, downwardAPI, emptyDir, '
        'ephemeral, image, persistentVolumeClaim, projected, secret, got "hostPath" '
        '(restricted: restrictedVolumes)',
        'spec.volumes[hp] must be one of: configMap, csi, downwardAPI, emptyDir, '
        'ephemeral, image, persistentVolumeClaim, projected, secret, got "hostPath" '
        '(restricted: restrictedVolumes)',
        'spec.volumes[share] must be one of: configMap, csi, downwardAPI, emptyDir, '
        'ephemeral, image, persistentVolumeClaim, projected, secret, got "nfs" '
        '(restricted: restrictedVolumes)',
        'spec.volumes[weird] must be one of: configMap, csi, downwardAPI, emptyDir, '
        'ephemeral, image, persistentVolumeClaim, projected, secret, got ["fancy"] '
        '(restricted: restrictedVolumes)',
    ],
}


@pytest.mark.parametrize(("name", "level", "version"), list(EXPECTED))
def test_every_message_at_every_place(name: str, level: str, version: str) -> None:
    pod = {"POD_LEVEL": POD_LEVEL, "CONTAINER_LEVEL": CONTAINER_LEVEL}[name]
    assert [v.message for v in evaluate_pod(pod, level, version)] == EXPECTED[
        (name, level, version)]


def test_a_named_port_and_an_unreadable_sysctl_before_a_bad_one() -> None:
    pod = _pod(securityContext={"sysctls": ["junk", {"name": "kernel.msgmax"}]},
               containers=[{"name": "base", "ports": [{"name": "http", "hostPort": 80}]}])
    assert [v.path for v in evaluate_pod(pod, "baseline")] == [
        "spec.containers[base].ports[http].hostPort",
        "spec.securityContext.sysctls[kernel.msgmax]"]
