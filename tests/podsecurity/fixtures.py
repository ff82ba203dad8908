"""Python port of upstream pod-security-admission test/fixtures*.go.

Upstream builds a minimal valid pod per level and version (fixtures.go), then per check a
generator turns it into pods that must pass and pods that must fail (fixtures_<check>.go).
A generator registered at v1.N serves v1.N+ until a newer one is registered; a baseline
generator also serves the restricted level. Pods here are plain dicts, as the webhook sees them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webhook.validation.podsecurity import CHECKS, MAX_VERSION

Pod = dict[str, Any]
PassFn = Callable[[Pod, str], list[Pod]]
FailFn = Callable[[Pod], list[Pod]]

NEWEST_MINOR = MAX_VERSION[1]  # upstream run.go newestMinorVersionToTest


def tweak(pod: Pod, change: Callable[[Pod], None]) -> Pod:
    """A deep copy of pod with change applied, like upstream tweak()."""
    copied = copy.deepcopy(pod)
    change(copied)
    return copied


def spec(pod: Pod) -> dict[str, Any]:
    return pod["spec"]


def container(pod: Pod) -> dict[str, Any]:
    return pod["spec"]["containers"][0]


def init_container(pod: Pod) -> dict[str, Any]:
    return pod["spec"]["initContainers"][0]


def both(pod: Pod) -> list[dict[str, Any]]:
    return [container(pod), init_container(pod)]


def pod_sc(pod: Pod) -> dict[str, Any]:
    return pod["spec"].setdefault("securityContext", {})


def sc(c: dict[str, Any]) -> dict[str, Any]:
    return c.setdefault("securityContext", {})


def ensure_security_context(pod: Pod) -> Pod:
    pod = copy.deepcopy(pod)
    pod_sc(pod)
    for c in both(pod):
        sc(c)
    return pod


def ensure_capabilities(pod: Pod) -> Pod:
    pod = ensure_security_context(pod)
    for c in both(pod):
        sc(c).setdefault("capabilities", {})
    return pod


def ensure_selinux_options(pod: Pod) -> Pod:
    pod = ensure_security_context(pod)
    pod_sc(pod).setdefault("seLinuxOptions", {})
    for c in both(pod):
        sc(c).setdefault("seLinuxOptions", {})
    return pod


def ensure_annotations(pod: Pod) -> Pod:
    pod = copy.deepcopy(pod)
    pod.setdefault("metadata", {}).setdefault("annotations", {})
    return pod


# ---------------------------------------------------------------------------------------------
# Minimal valid pods (fixtures.go)

def _minimal_pods() -> dict[str, dict[int, Pod]]:
    baseline_1_0: Pod = {
        "metadata": {"name": "base"},
        "spec": {
            "initContainers": [{"name": "initcontainer1", "image": "registry.k8s.io/pause"}],
            "containers": [{"name": "container1", "image": "registry.k8s.io/pause"}],
        },
    }
    # 1.0+: baseline + runAsNonRoot=true
    restricted_1_0 = tweak(baseline_1_0,
                           lambda p: spec(p).update(securityContext={"runAsNonRoot": True}))

    # 1.8+: allowPrivilegeEscalation=false
    def ape(p: Pod) -> None:
        for c in both(p):
            c["securityContext"] = {"allowPrivilegeEscalation": False}

    restricted_1_8 = tweak(restricted_1_0, ape)
    # 1.19+: seccompProfile.type=RuntimeDefault
    restricted_1_19 = tweak(restricted_1_8, lambda p: pod_sc(p).update(
        seccompProfile={"type": "RuntimeDefault"}))

    # 1.22+: capabilities.drop=["ALL"]
    def drop_all(p: Pod) -> None:
        for c in both(p):
            sc(c)["capabilities"] = {"drop": ["ALL"]}

    restricted_1_22 = tweak(restricted_1_19, drop_all)
    return {
        "baseline": {0: baseline_1_0},
        "restricted": {0: restricted_1_0, 8: restricted_1_8, 19: restricted_1_19,
                       22: restricted_1_22},
    }


MINIMAL_PODS = _minimal_pods()


def _with_os(pod: Pod, os_name: str) -> Pod:
    return tweak(pod, lambda p: spec(p).update(os={"name": os_name}))


def minimal_valid_pod(level: str, minor: int, os_name: str | None = None) -> Pod:
    """Upstream GetMinimalValidPod / GetMinimalValidLinuxPod / GetMinimalValidWindowsPod."""
    if os_name == "windows" and level == "restricted" and minor >= 25:
        # None of the restricted requirements added between 1.0 and 1.25 apply to Windows pods.
        return _with_os(MINIMAL_PODS["restricted"][0], "windows")
    pods = MINIMAL_PODS[level]
    pod = pods[max(m for m in pods if m <= minor)]
    return _with_os(pod, os_name) if os_name else copy.deepcopy(pod)


# ---------------------------------------------------------------------------------------------
# Generators (fixtures_<check>.go)

@dataclass(frozen=True)
class Generator:
    generate_pass: PassFn
    generate_fail: FailFn


GENERATORS: dict[tuple[str, int, str], Generator] = {}


def register(level: str, minor: int, check: str, generator: Generator) -> None:
    """Upstream registerFixtureGenerator: baseline generators serve restricted too."""
    assert check in {c.id for c in CHECKS}, check
    for lvl in ("baseline", "restricted") if level == "baseline" else ("restricted",):
        key = (lvl, minor, check)
        assert key not in GENERATORS, key
        GENERATORS[key] = generator


def none_pass(pod: Pod, level: str) -> list[Pod]:
    return []  # minimal valid pod already captures all valid combinations


# hostNamespaces 1.0
register("baseline", 0, "hostNamespaces", Generator(
    none_pass,
    lambda p: [tweak(p, lambda q, f=f: spec(q).update({f: True}))
               for f in ("hostIPC", "hostNetwork", "hostPID")],
))


# privileged 1.0
def _privileged_pass(p: Pod, level: str) -> list[Pod]:
    p = ensure_security_context(p)
    return [tweak(p, lambda q: [sc(c).update(privileged=False) for c in both(q)])]


register("baseline", 0, "privileged", Generator(
    _privileged_pass,
    lambda p: [
        tweak(ensure_security_context(p), lambda q: sc(container(q)).update(privileged=True)),
        tweak(ensure_security_context(p),
              lambda q: sc(init_container(q)).update(privileged=True)),
    ],
))

# capabilities_baseline 1.0
BASELINE_CAPS = ["AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]


def _caps_baseline_pass(p: Pod, level: str) -> list[Pod]:
    # Don't generate fixtures if the minimal valid pod drops ALL (restricted 1.22+).
    if "ALL" in container(p).get("securityContext", {}).get("capabilities", {}).get("drop", []):
        return []
    p = ensure_capabilities(p)
    return [tweak(p, lambda q: [sc(c)["capabilities"].update(add=list(BASELINE_CAPS))
                                for c in both(q)])]


def _caps_add(which: Callable[[Pod], dict[str, Any]], caps: list[str]) -> Callable[[Pod], None]:
    return lambda q: sc(which(q))["capabilities"].update(add=caps)


register("baseline", 0, "capabilities_baseline", Generator(
    _caps_baseline_pass,
    lambda p: [
        tweak(ensure_capabilities(p), _caps_add(container, ["NET_RAW"])),
        tweak(ensure_capabilities(p), _caps_add(init_container, ["NET_RAW"])),
        tweak(ensure_capabilities(p), _caps_add(container, ["chown"])),  # case-difference
        tweak(ensure_capabilities(p), _caps_add(container, ["CAP_CHOWN"])),  # CAP_ prefix
    ],
))

# hostPathVolumes 1.0
register("baseline", 0, "hostPathVolumes", Generator(
    lambda p, level: [tweak(p, lambda q: spec(q).update(
        volumes=[{"name": "volume-emptydir", "emptyDir": {}}]))],
    lambda p: [
        tweak(p, lambda q: spec(q).update(
            volumes=[{"name": "volume-hostpath", "hostPath": {"path": "/a"}}])),
        tweak(p, lambda q: spec(q).update(volumes=[
            {"name": "volume-emptydir", "emptyDir": {}},
            {"name": "volume-hostpath", "hostPath": {"path": "/a"}},
        ])),
    ],
))

# hostPorts 1.0
register("baseline", 0, "hostPorts", Generator(
    lambda p, level: [tweak(p, lambda q: (
        container(q).update(ports=[{"containerPort": 12345}]),
        init_container(q).update(ports=[{"containerPort": 12346}]),
    ))],
    lambda p: [
        tweak(p, lambda q: container(q).update(
            ports=[{"containerPort": 12345, "hostPort": 12345}])),
        tweak(p, lambda q: init_container(q).update(
            ports=[{"containerPort": 12346, "hostPort": 12346}])),
        tweak(p, lambda q: (
            container(q).update(ports=[{"containerPort": 12345, "hostPort": 12345},
                                       {"containerPort": 12347}]),
            init_container(q).update(ports=[{"containerPort": 12346, "hostPort": 12346},
                                            {"containerPort": 12348}]),
        )),
    ],
))

# appArmorProfile 1.0 (beta annotations, plus the appArmorProfile field)
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _annotate(key_of: Callable[[Pod], str], value: str) -> Callable[[Pod], None]:
    return lambda q: q["metadata"]["annotations"].update({key_of(q): value})


def _apparmor_pass(p: Pod, level: str) -> list[Pod]:
    p = ensure_security_context(ensure_annotations(p))
    return [
        tweak(p, lambda q: (
            _annotate(lambda r: APPARMOR_PREFIX + container(r)["name"], "runtime/default")(q),
            _annotate(lambda r: APPARMOR_PREFIX + init_container(r)["name"], "localhost/foo")(q),
        )),
        tweak(p, lambda q: (
            pod_sc(q).update(appArmorProfile={"type": "RuntimeDefault"}),
            sc(container(q)).update(appArmorProfile={"type": "Localhost",
                                                     "localhostProfile": "testing"}),
        )),
    ]


def _apparmor_fail(p: Pod) -> list[Pod]:
    p = ensure_security_context(ensure_annotations(p))
    unconfined = {"type": "Unconfined"}
    return [
        tweak(p, _annotate(lambda r: APPARMOR_PREFIX + container(r)["name"], "unconfined")),
        tweak(p, _annotate(lambda r: APPARMOR_PREFIX + init_container(r)["name"], "unconfined")),
        tweak(p, lambda q: pod_sc(q).update(appArmorProfile=dict(unconfined))),
        tweak(p, lambda q: sc(container(q)).update(appArmorProfile=dict(unconfined))),
        tweak(p, lambda q: sc(init_container(q)).update(appArmorProfile=dict(unconfined))),
    ]


register("baseline", 0, "appArmorProfile", Generator(_apparmor_pass, _apparmor_fail))


# seLinuxOptions 1.0 and 1.31
def _selinux_pass(extra_type: str | None) -> PassFn:
    def generate(p: Pod, level: str) -> list[Pod]:
        p = ensure_selinux_options(p)

        def all_valid(q: Pod) -> None:
            pod_sc(q)["seLinuxOptions"].update(type="container_t", level="")
            sc(container(q))["seLinuxOptions"].update(type="container_init_t",
                                                      level="somevalue")
            sc(init_container(q))["seLinuxOptions"]["type"] = "container_kvm_t"

        pods = [
            tweak(p, lambda q: (pod_sc(q).pop("seLinuxOptions"),
                                sc(container(q)).pop("seLinuxOptions"))),
            tweak(p, all_valid),
        ]
        if extra_type:
            pods.append(tweak(p, lambda q: pod_sc(q)["seLinuxOptions"].update(type=extra_type)))
        return pods
    return generate


def _selinux_fail(p: Pod) -> list[Pod]:
    p = ensure_selinux_options(p)
    return [
        tweak(p, lambda q: pod_sc(q)["seLinuxOptions"].update(type="somevalue")),
        tweak(p, lambda q: sc(container(q))["seLinuxOptions"].update(type="somevalue")),
        tweak(p, lambda q: sc(init_container(q))["seLinuxOptions"].update(type="somevalue")),
        tweak(p, lambda q: pod_sc(q)["seLinuxOptions"].update(user="somevalue")),
        tweak(p, lambda q: pod_sc(q)["seLinuxOptions"].update(role="somevalue")),
    ]


register("baseline", 0, "seLinuxOptions", Generator(_selinux_pass(None), _selinux_fail))
register("baseline", 31, "seLinuxOptions",
         Generator(_selinux_pass("container_engine_t"), _selinux_fail))


# procMount 1.0 and 1.35 (baseline), procMount_restricted 1.35
def _proc_mount(which: Callable[[Pod], list[dict[str, Any]]], value: str,
                host_users: bool) -> Callable[[Pod], None]:
    def change(q: Pod) -> None:
        for c in which(q):
            sc(c)["procMount"] = value
        spec(q)["hostUsers"] = host_users
    return change


def _proc_mount_default_pass(p: Pod, level: str) -> list[Pod]:
    return [tweak(ensure_security_context(p), _proc_mount(both, "Default", False))]


def _proc_mount_fail(host_users: bool) -> FailFn:
    def generate(p: Pod) -> list[Pod]:
        p = ensure_security_context(p)
        return [
            tweak(p, _proc_mount(lambda q: [container(q)], "Unmasked", host_users)),
            tweak(p, _proc_mount(lambda q: [init_container(q)], "Unmasked", host_users)),
        ]
    return generate


def _proc_mount_1_35_pass(p: Pod, level: str) -> list[Pod]:
    pods = _proc_mount_default_pass(p, level)
    if level != "restricted":
        # A user-namespaced pod may unmask /proc at baseline, never at restricted.
        pods.append(tweak(ensure_security_context(p), _proc_mount(both, "Unmasked", False)))
    return pods


register("baseline", 0, "procMount", Generator(_proc_mount_default_pass, _proc_mount_fail(False)))
register("baseline", 35, "procMount", Generator(_proc_mount_1_35_pass, _proc_mount_fail(True)))
register("restricted", 35, "procMount_restricted",
         Generator(_proc_mount_default_pass, _proc_mount_fail(False)))

# seccompProfile_baseline 1.0 (annotations) and 1.19 (fields)
SECCOMP_POD = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER = "container.seccomp.security.alpha.kubernetes.io/"


def _seccomp_baseline_1_0_pass(p: Pod, level: str) -> list[Pod]:
    p = ensure_annotations(p)
    return [tweak(p, lambda q: q["metadata"]["annotations"].update({
        SECCOMP_POD: "runtime/default",
        SECCOMP_CONTAINER + container(q)["name"]: "localhost/testing",
    }))]


def _seccomp_baseline_1_0_fail(p: Pod) -> list[Pod]:
    p = ensure_annotations(p)
    return [
        tweak(p, _annotate(lambda r: SECCOMP_POD, "unconfined")),
        tweak(p, _annotate(lambda r: SECCOMP_CONTAINER + container(r)["name"], "unconfined")),
        tweak(p, _annotate(lambda r: SECCOMP_CONTAINER + init_container(r)["name"],
                           "unconfined")),
    ]


def _seccomp_baseline_1_19_pass(p: Pod, level: str) -> list[Pod]:
    # Don't generate fixtures if the minimal valid pod already has seccomp config.
    if p["spec"].get("securityContext", {}).get("seccompProfile") == {"type": "RuntimeDefault"}:
        return []
    p = ensure_security_context(p)
    return [tweak(p, lambda q: (
        pod_sc(q).update(seccompProfile={"type": "RuntimeDefault"}),
        sc(container(q)).update(seccompProfile={"type": "RuntimeDefault"}),
    ))]


def _seccomp_baseline_1_19_fail(p: Pod) -> list[Pod]:
    p = ensure_security_context(p)
    unconfined = {"type": "Unconfined"}
    return [
        tweak(p, lambda q: pod_sc(q).update(seccompProfile=dict(unconfined))),
        tweak(p, lambda q: sc(container(q)).update(seccompProfile=dict(unconfined))),
        tweak(p, lambda q: sc(init_container(q)).update(seccompProfile=dict(unconfined))),
    ]


register("baseline", 0, "seccompProfile_baseline",
         Generator(_seccomp_baseline_1_0_pass, _seccomp_baseline_1_0_fail))
register("baseline", 19, "seccompProfile_baseline",
         Generator(_seccomp_baseline_1_19_pass, _seccomp_baseline_1_19_fail))

# sysctls 1.0, 1.27, 1.29, 1.32
SYSCTLS_1_0 = [("kernel.shm_rmid_forced", "0"), ("net.ipv4.ip_local_port_range", "1024 65535"),
               ("net.ipv4.tcp_syncookies", "0"), ("net.ipv4.ping_group_range", "1 0"),
               ("net.ipv4.ip_unprivileged_port_start", "1024")]
SYSCTLS_1_27 = [*SYSCTLS_1_0, ("net.ipv4.ip_local_reserved_ports", "1024-4999")]
SYSCTLS_1_29 = [*SYSCTLS_1_27, ("net.ipv4.tcp_keepalive_time", "7200"),
                ("net.ipv4.tcp_fin_timeout", "60"), ("net.ipv4.tcp_keepalive_intvl", "75"),
                ("net.ipv4.tcp_keepalive_probes", "9")]
SYSCTLS_1_32 = [*SYSCTLS_1_29, ("net.ipv4.tcp_rmem", "4096 87380 16777216"),
                ("net.ipv4.tcp_wmem", "4096 65536 16777216")]


def _sysctls_generator(allowed: list[tuple[str, str]]) -> Generator:
    def set_sysctls(values: list[tuple[str, str]] | None) -> Callable[[Pod], None]:
        def change(q: Pod) -> None:
            if values is None:
                pod_sc(q).pop("sysctls", None)
            else:
                pod_sc(q)["sysctls"] = [{"name": n, "value": v} for n, v in values]
        return change

    return Generator(
        lambda p, level: [tweak(p, set_sysctls(None)), tweak(p, set_sysctls(allowed))],
        lambda p: [tweak(p, set_sysctls([("othersysctl", "other")]))],
    )


register("baseline", 0, "sysctls", _sysctls_generator(SYSCTLS_1_0))
register("baseline", 27, "sysctls", _sysctls_generator(SYSCTLS_1_27))
register("baseline", 29, "sysctls", _sysctls_generator(SYSCTLS_1_29))
register("baseline", 32, "sysctls", _sysctls_generator(SYSCTLS_1_32))


# windowsHostProcess 1.0
def _host_process_fail(p: Pod) -> list[Pod]:
    p = ensure_security_context(p)
    pod_sc(p).setdefault("windowsOptions", {})
    for c in both(p):
        sc(c).setdefault("windowsOptions", {})

    def on_pod(q: Pod) -> None:
        spec(q)["hostNetwork"] = True  # required by API validation for HostProcess pods
        pod_sc(q)["windowsOptions"]["hostProcess"] = True

    def on_containers(q: Pod) -> None:
        spec(q)["hostNetwork"] = True
        for c in both(q):
            sc(c)["windowsOptions"]["hostProcess"] = True

    return [tweak(p, on_pod), tweak(p, on_containers)]


register("baseline", 0, "windowsHostProcess", Generator(none_pass, _host_process_fail))


# hostProbesAndHostLifecycle 1.34
def _probe(where: str, action: str, host: str | None) -> dict[str, Any]:
    handler: dict[str, Any] = {"port": 8080}
    if host is not None:
        handler["host"] = host
    return {action: handler}


register("baseline", 34, "hostProbesAndHostLifecycle", Generator(
    lambda p, level: [
        p,  # a pod with no probes passes
        tweak(p, lambda q: container(q).update(livenessProbe=_probe("", "httpGet", None))),
        tweak(p, lambda q: container(q).update(readinessProbe=_probe("", "tcpSocket", None))),
    ],
    lambda p: [
        tweak(p, lambda q: container(q).update(livenessProbe=_probe("", "httpGet", "bad.host"))),
        tweak(p, lambda q: init_container(q).update(
            restartPolicy="Always", readinessProbe=_probe("", "tcpSocket", "8.8.8.8"))),
        tweak(p, lambda q: container(q).update(
            lifecycle={"postStart": _probe("", "httpGet", "bad.host")})),
        tweak(p, lambda q: container(q).update(livenessProbe=_probe("", "httpGet", "127.0.0.1"))),
        tweak(p, lambda q: container(q).update(readinessProbe=_probe("", "tcpSocket", "::1"))),
    ],
))

# restrictedVolumes 1.0
ALLOWED_VOLUMES = [
    {"name": "volume0"},  # implicit empty dir (API defaulting)
    {"name": "volume1", "emptyDir": {}},
    {"name": "volume2", "secret": {"secretName": "test"}},
    {"name": "volume3", "persistentVolumeClaim": {"claimName": "test"}},
    {"name": "volume4", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
    {"name": "volume5", "configMap": {"name": "test"}},
    {"name": "volume6", "projected": {"sources": []}},
    {"name": "volume7", "csi": {"driver": "inline.storage.kubernetes.io",
                                "volumeAttributes": {"foo": "bar"}}},
    {"name": "volume8", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
    {"name": "volume9", "image": {"reference": "registry.k8s.io/pause"}},
]
RESTRICTED_VOLUME_SOURCES = [
    ("gcePersistentDisk", {"pdName": "test"}),
    ("awsElasticBlockStore", {"volumeID": "test"}),
    ("gitRepo", {"repository": "github.com/kubernetes/kubernetes"}),
    ("nfs", {"server": "test", "path": "/test"}),
    ("iscsi", {"targetPortal": "test", "iqn": "iqn.2001-04.com.example:storage.kube.sys1.xyz",
               "lun": 0}),
    ("glusterfs", {"path": "test", "endpoints": "test"}),
    ("rbd", {"monitors": ["test"], "image": "test"}),
    ("flexVolume", {"driver": "test"}),
    ("cinder", {"volumeID": "test"}),
    ("cephfs", {"monitors": ["test"]}),
    ("flocker", {"datasetName": "test"}),
    ("fc", {"wwids": ["test"]}),
    ("azureFile", {"secretName": "test", "shareName": "test"}),
    ("vsphereVolume", {"volumePath": "test"}),
    ("quobyte", {"registry": "localhost:1234", "volume": "test"}),
    ("azureDisk", {"diskName": "test",
                   "diskURI": "https://test.blob.core.windows.net/test/test.vhd"}),
    ("portworxVolume", {"volumeID": "test", "fsType": "ext4"}),
    ("scaleIO", {"volumeName": "test", "gateway": "localhost", "system": "test"}),
    ("storageos", {"volumeName": "test"}),
    ("hostPath", {"path": "/dev/null"}),
    ("photonPersistentDisk", {"pdID": "test"}),
    ("someFutureSource", {"x": "y"}),  # upstream's "unknown" volume type
]
register("restricted", 0, "restrictedVolumes", Generator(
    lambda p, level: [tweak(p, lambda q: spec(q).update(volumes=copy.deepcopy(ALLOWED_VOLUMES)))],
    lambda p: [tweak(p, lambda q, s=s, v=v: spec(q).update(volumes=[{"name": "volume1", s: v}]))
               for s, v in RESTRICTED_VOLUME_SOURCES],
))

# allowPrivilegeEscalation 1.8
register("restricted", 8, "allowPrivilegeEscalation", Generator(
    none_pass,
    lambda p: [] if p["spec"].get("os", {}).get("name") == "windows" else [
        tweak(p, lambda q: sc(container(q)).update(allowPrivilegeEscalation=True)),
        tweak(p, lambda q: sc(init_container(q)).update(allowPrivilegeEscalation=True)),
        tweak(p, lambda q: sc(container(q)).pop("allowPrivilegeEscalation")),
        tweak(p, lambda q: container(q).pop("securityContext")),
    ],
))


# runAsNonRoot 1.0 and 1.35
def _non_root_pass(host_users_relaxed: bool) -> PassFn:
    def generate(p: Pod, level: str) -> list[Pod]:
        p = ensure_security_context(p)
        pods = [
            tweak(p, lambda q: (pod_sc(q).update(runAsNonRoot=True),
                                [sc(c).pop("runAsNonRoot", None) for c in both(q)])),
            tweak(p, lambda q: (pod_sc(q).pop("runAsNonRoot", None),
                                [sc(c).update(runAsNonRoot=True) for c in both(q)])),
        ]
        if host_users_relaxed:
            # 1.35: root in a user namespace is unprivileged on the host.
            pods.append(tweak(p, lambda q: (pod_sc(q).update(runAsNonRoot=False),
                                            spec(q).update(hostUsers=False))))
        return pods
    return generate


def _non_root_fail(p: Pod) -> list[Pod]:
    p = ensure_security_context(p)
    return [
        tweak(p, lambda q: (pod_sc(q).pop("runAsNonRoot", None),
                            [sc(c).pop("runAsNonRoot", None) for c in both(q)])),
        tweak(p, lambda q: pod_sc(q).update(runAsNonRoot=False)),
        tweak(p, lambda q: sc(container(q)).update(runAsNonRoot=False)),
        tweak(p, lambda q: sc(init_container(q)).update(runAsNonRoot=False)),
        tweak(p, lambda q: (pod_sc(q).update(runAsNonRoot=False),
                            spec(q).update(hostUsers=True))),
    ]


register("restricted", 0, "runAsNonRoot", Generator(_non_root_pass(False), _non_root_fail))
register("restricted", 35, "runAsNonRoot", Generator(_non_root_pass(True), _non_root_fail))


# runAsUser 1.23 and 1.35
def _run_as_user_pass(host_users_relaxed: bool) -> PassFn:
    def generate(p: Pod, level: str) -> list[Pod]:
        p = ensure_security_context(p)
        pods = [tweak(p, lambda q: (pod_sc(q).update(runAsUser=1000),
                                    [sc(c).update(runAsUser=1000) for c in both(q)]))]
        if host_users_relaxed:
            # 1.35: uid 0 in a user namespace is unprivileged on the host.
            pods.append(tweak(p, lambda q: (pod_sc(q).update(runAsUser=0),
                                            sc(container(q)).update(runAsUser=0),
                                            spec(q).update(hostUsers=False))))
        return pods
    return generate


def _run_as_user_fail(p: Pod) -> list[Pod]:
    p = ensure_security_context(p)
    return [
        tweak(p, lambda q: pod_sc(q).update(runAsUser=0)),
        tweak(p, lambda q: sc(container(q)).update(runAsUser=0)),
        tweak(p, lambda q: sc(init_container(q)).update(runAsUser=0)),
    ]


register("restricted", 23, "runAsUser", Generator(_run_as_user_pass(False), _run_as_user_fail))
register("restricted", 35, "runAsUser", Generator(_run_as_user_pass(True), _run_as_user_fail))


# seccompProfile_restricted 1.19
def _seccomp_restricted_pass(p: Pod, level: str) -> list[Pod]:
    p = ensure_security_context(p)
    return [
        tweak(p, lambda q: pod_sc(q).update(seccompProfile={"type": "RuntimeDefault"})),
        tweak(p, lambda q: pod_sc(q).update(
            seccompProfile={"type": "Localhost", "localhostProfile": "testing"})),
        tweak(p, lambda q: (
            pod_sc(q).pop("seccompProfile", None),
            sc(container(q)).update(seccompProfile={"type": "RuntimeDefault"}),
            sc(init_container(q)).update(
                seccompProfile={"type": "Localhost", "localhostProfile": "testing"}),
        )),
    ]


def _seccomp_restricted_fail(p: Pod) -> list[Pod]:
    p = ensure_security_context(p)
    rd, unconfined = {"type": "RuntimeDefault"}, {"type": "Unconfined"}
    return [
        tweak(p, lambda q: pod_sc(q).pop("seccompProfile", None)),
        tweak(p, lambda q: pod_sc(q).update(seccompProfile=dict(unconfined))),
        tweak(p, lambda q: (pod_sc(q).pop("seccompProfile", None),
                            sc(container(q)).update(seccompProfile=dict(rd)))),
        tweak(p, lambda q: (pod_sc(q).pop("seccompProfile", None),
                            sc(init_container(q)).update(seccompProfile=dict(rd)))),
        tweak(p, lambda q: (pod_sc(q).pop("seccompProfile", None),
                            sc(container(q)).update(seccompProfile=dict(rd)),
                            sc(init_container(q)).update(seccompProfile=dict(unconfined)))),
    ]


register("restricted", 19, "seccompProfile_restricted",
         Generator(_seccomp_restricted_pass, _seccomp_restricted_fail))


# capabilities_restricted 1.22
def _caps_restricted_pass(p: Pod, level: str) -> list[Pod]:
    p = ensure_capabilities(p)
    return [tweak(p, lambda q: [sc(c)["capabilities"].update(drop=["ALL"],
                                                             add=["NET_BIND_SERVICE"])
                                for c in both(q)])]


EVERY_CAPABILITY = [
    "SYS_TIME", "SYS_MODULE", "SYS_RAWIO", "SYS_PACCT", "SYS_ADMIN", "SYS_NICE", "SYS_RESOURCE",
    "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "AUDIT_WRITE", "AUDIT_CONTROL", "MAC_OVERRIDE",
    "MAC_ADMIN", "NET_ADMIN", "SYSLOG", "CHOWN", "NET_RAW", "DAC_OVERRIDE", "FOWNER",
    "DAC_READ_SEARCH", "FSETID", "KILL", "SETGID", "SETUID", "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST", "IPC_LOCK", "IPC_OWNER", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_BOOT", "LEASE", "SETFCAP", "WAKE_ALARM", "BLOCK_SUSPEND",
]


def _caps_restricted_fail(p: Pod) -> list[Pod]:
    p = ensure_capabilities(p)
    return [
        tweak(p, lambda q: sc(container(q))["capabilities"].update(drop=[])),
        tweak(p, lambda q: sc(init_container(q))["capabilities"].update(drop=[])),
        # dropping every capability by name is not dropping "ALL"
        tweak(p, lambda q: [sc(c)["capabilities"].update(drop=list(EVERY_CAPABILITY))
                            for c in both(q)]),
        tweak(p, lambda q: [sc(c)["capabilities"].update(drop=["ALL"],
                                                         add=list(BASELINE_CAPS))
                            for c in both(q)]),
    ]


register("restricted", 22, "capabilities_restricted",
         Generator(_caps_restricted_pass, _caps_restricted_fail))


# ---------------------------------------------------------------------------------------------
# Lookup (fixtures.go getFixtures, run.go checksForLevelAndVersion)

def checks_for_level_and_version(level: str, minor: int) -> list[str]:
    """Checks with fixtures at level/version: overrides are not applied, as upstream."""
    return [c.id for c in CHECKS
            if c.versions[0].min_version[1] <= minor
            and (c.level == level or level == "restricted")]


def get_fixtures(level: str, minor: int, check: str,
                 os_name: str | None = None) -> tuple[list[Pod], list[Pod]]:
    """(pass pods, fail pods) from the newest generator registered at or below minor."""
    base = minimal_valid_pod(level, minor, os_name)
    for m in range(minor, -1, -1):
        generator = GENERATORS.get((level, m, check))
        if generator is not None:
            return (generator.generate_pass(copy.deepcopy(base), level),
                    generator.generate_fail(copy.deepcopy(base)))
    raise KeyError(f"no fixture generator for {level}/v1.{minor}/{check}")


def overriders(check: str, minor: int) -> set[str]:
    """Restricted checks that replace `check` at v1.minor (so report its failures)."""
    found = set()
    for c in CHECKS:
        revisions = [v for v in c.versions if v.min_version[1] <= minor]
        if c.level == "restricted" and revisions and check in revisions[-1].overrides:
            found.add(c.id)
    return found
