"""One function per upstream check version (pod-security-admission policy/check_*.go).

Every function has the signature `(meta, spec) -> list[Violation]` and reports one violation
per offending field, where upstream reports one aggregated CheckResult per check.
"""

from __future__ import annotations

from typing import Any

from webhook.violations import Violation, violation

from ._fields import (
    containers,
    host_users_false,
    is_windows,
    items,
    label,
    opt_bool,
    opt_int,
    opt_string,
    string,
    struct,
)

Meta = dict[str, Any]
Spec = dict[str, Any]


def _rule(level: str, check_id: str) -> str:
    return f"{level}: {check_id}"


def _annotations(meta: Any) -> dict[str, str]:
    """metadata.annotations as map[string]string; non-string entries cannot be read."""
    raw = struct(meta, "annotations") or {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}


# --------------------------------------------------------------------------------------------
# baseline: hostNamespaces (check_hostNamespaces.go, 1.0)

HOST_NAMESPACES = _rule("baseline", "hostNamespaces")


def host_namespaces_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    return [
        violation(f"spec.{field}", "must be unset or false", True, HOST_NAMESPACES)
        for field in ("hostNetwork", "hostPID", "hostIPC")
        if opt_bool(spec, field) is True
    ]


# --------------------------------------------------------------------------------------------
# baseline: privileged (check_privileged.go, 1.0)

PRIVILEGED = _rule("baseline", "privileged")


def privileged_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    return [
        violation(f"{c.path}.securityContext.privileged", "must be unset or false", True,
                  PRIVILEGED)
        for c in containers(spec)
        if opt_bool(c.security_context, "privileged") is True
    ]


# --------------------------------------------------------------------------------------------
# baseline: capabilities_baseline (check_capabilities_baseline.go, 1.0)

CAPABILITIES_BASELINE = _rule("baseline", "capabilities_baseline")
CAPABILITIES_ALLOWED_1_0 = (
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
)


def capabilities_baseline_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    for c in containers(spec):
        caps = struct(c.security_context, "capabilities")
        added = [a for a in items(caps, "add") if isinstance(a, str)]
        bad = sorted({a for a in added if a not in CAPABILITIES_ALLOWED_1_0})
        if bad:
            out.append(violation(
                f"{c.path}.securityContext.capabilities.add",
                "must only contain: " + ", ".join(CAPABILITIES_ALLOWED_1_0),
                bad, CAPABILITIES_BASELINE))
    return out


# --------------------------------------------------------------------------------------------
# baseline: hostPathVolumes (check_hostPathVolumes.go, 1.0)

HOST_PATH_VOLUMES = _rule("baseline", "hostPathVolumes")


def host_path_volumes_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    for index, volume in enumerate(items(spec, "volumes")):
        host_path = struct(volume, "hostPath")
        if host_path is not None:
            out.append(violation(f"spec.volumes[{label(volume, index)}].hostPath",
                                 "must be unset", host_path, HOST_PATH_VOLUMES))
    return out


# --------------------------------------------------------------------------------------------
# baseline: hostPorts (check_hostPorts.go, 1.0)

HOST_PORTS = _rule("baseline", "hostPorts")


def host_ports_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    for c in containers(spec):
        for index, port in enumerate(items(c.fields, "ports")):
            host_port = opt_int(port, "hostPort")
            if host_port:
                out.append(violation(f"{c.path}.ports[{label(port, index)}].hostPort",
                                     "must be unset or 0", host_port, HOST_PORTS))
    return out


# --------------------------------------------------------------------------------------------
# baseline: appArmorProfile (check_appArmorProfile.go, 1.0: field and beta annotations)

APPARMOR = _rule("baseline", "appArmorProfile")
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
APPARMOR_TYPES = ("RuntimeDefault", "Localhost")


def _apparmor_annotation_ok(value: str) -> bool:
    return value in ("", "runtime/default") or value.startswith("localhost/")


def app_armor_profile_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    requirement = "must be RuntimeDefault or Localhost"
    sources = [("spec.securityContext", struct(spec, "securityContext"))]
    sources += [(f"{c.path}.securityContext", c.security_context) for c in containers(spec)]
    for prefix, sc in sources:
        profile = struct(sc, "appArmorProfile")
        if profile is not None and string(profile, "type") not in APPARMOR_TYPES:
            out.append(violation(f"{prefix}.appArmorProfile.type", requirement,
                                 opt_string(profile, "type"), APPARMOR))
    for key, value in _annotations(meta).items():
        if key.startswith(APPARMOR_ANNOTATION_PREFIX) and not _apparmor_annotation_ok(value):
            out.append(violation(f"metadata.annotations[{key}]",
                                 'must be "runtime/default", "localhost/<profile>" or empty',
                                 value, APPARMOR))
    return out


# --------------------------------------------------------------------------------------------
# baseline: seLinuxOptions (check_seLinuxOptions.go, 1.0; 1.31 adds container_engine_t)

SELINUX = _rule("baseline", "seLinuxOptions")
SELINUX_TYPES_1_0 = ("", "container_t", "container_init_t", "container_kvm_t")
SELINUX_TYPES_1_31 = (*SELINUX_TYPES_1_0, "container_engine_t")


def _selinux(spec: Spec, allowed: tuple[str, ...]) -> list[Violation]:
    out = []
    type_requirement = "must be unset or one of: " + ", ".join(t for t in allowed if t)
    sources = [("spec.securityContext", struct(spec, "securityContext"))]
    sources += [(f"{c.path}.securityContext", c.security_context) for c in containers(spec)]
    for prefix, sc in sources:
        opts = struct(sc, "seLinuxOptions")
        if opts is None:
            continue
        if string(opts, "type") not in allowed:
            out.append(violation(f"{prefix}.seLinuxOptions.type", type_requirement,
                                 string(opts, "type"), SELINUX))
        for field in ("user", "role"):
            if string(opts, field):
                out.append(violation(f"{prefix}.seLinuxOptions.{field}",
                                     "must be unset or empty", string(opts, field), SELINUX))
    return out


def se_linux_options_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    return _selinux(spec, SELINUX_TYPES_1_0)


def se_linux_options_v1_31(meta: Meta, spec: Spec) -> list[Violation]:
    return _selinux(spec, SELINUX_TYPES_1_31)


# --------------------------------------------------------------------------------------------
# baseline: procMount (check_procMount.go, 1.0; 1.35 relaxed for hostUsers: false)
# restricted: procMount_restricted (check_procMount_restricted.go, 1.35, overrides procMount)

PROC_MOUNT = _rule("baseline", "procMount")
PROC_MOUNT_RESTRICTED = _rule("restricted", "procMount_restricted")


def _proc_mount(spec: Spec, requirement: str, rule: str) -> list[Violation]:
    out = []
    for c in containers(spec):
        value = opt_string(c.security_context, "procMount")
        if value is not None and value != "Default":
            out.append(violation(f"{c.path}.securityContext.procMount", requirement, value, rule))
    return out


def proc_mount_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    return _proc_mount(spec, "must be unset or Default", PROC_MOUNT)


def proc_mount_v1_35(meta: Meta, spec: Spec) -> list[Violation]:
    # Upstream procMount1_35baseline: a user-namespaced pod may unmask /proc.
    if host_users_false(spec):
        return []
    return _proc_mount(spec, "must be unset or Default (or set spec.hostUsers=false)",
                       PROC_MOUNT)


def proc_mount_restricted_v1_35(meta: Meta, spec: Spec) -> list[Violation]:
    return _proc_mount(spec, "must be unset or Default", PROC_MOUNT_RESTRICTED)


# --------------------------------------------------------------------------------------------
# baseline: seccompProfile_baseline (check_seccompProfile_baseline.go, 1.0 annotations,
# 1.19 fields)

SECCOMP_BASELINE = _rule("baseline", "seccompProfile_baseline")
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def _seccomp_annotation_ok(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def seccomp_profile_baseline_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    annotations = _annotations(meta)
    keys = [SECCOMP_POD_ANNOTATION]
    # Only annotations naming a container of this pod are read, as upstream does.
    keys += [SECCOMP_CONTAINER_ANNOTATION_PREFIX + c.name for c in containers(spec)]
    return [
        violation(f"metadata.annotations[{key}]",
                  'must be "runtime/default", "docker/default" or "localhost/<profile>"',
                  annotations[key], SECCOMP_BASELINE)
        for key in dict.fromkeys(keys)
        if key in annotations and not _seccomp_annotation_ok(annotations[key])
    ]


def _seccomp_sources(spec: Spec) -> list[tuple[str, dict[str, Any] | None]]:
    sources = [("spec.securityContext", struct(spec, "securityContext"))]
    sources += [(f"{c.path}.securityContext", c.security_context) for c in containers(spec)]
    return sources


def seccomp_profile_baseline_v1_19(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    for prefix, sc in _seccomp_sources(spec):
        profile = struct(sc, "seccompProfile")
        if profile is not None and string(profile, "type") not in SECCOMP_TYPES:
            out.append(violation(f"{prefix}.seccompProfile.type",
                                 "must be unset, RuntimeDefault or Localhost",
                                 opt_string(profile, "type"), SECCOMP_BASELINE))
    return out


# --------------------------------------------------------------------------------------------
# baseline: sysctls (check_sysctls.go, 1.0, 1.27, 1.29, 1.32)

SYSCTLS = _rule("baseline", "sysctls")
SYSCTLS_ALLOWED_1_0 = (
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
)
SYSCTLS_ALLOWED_1_27 = (*SYSCTLS_ALLOWED_1_0, "net.ipv4.ip_local_reserved_ports")
SYSCTLS_ALLOWED_1_29 = (
    *SYSCTLS_ALLOWED_1_27,
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
)
SYSCTLS_ALLOWED_1_32 = (*SYSCTLS_ALLOWED_1_29, "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem")


def _sysctls(spec: Spec, allowed: tuple[str, ...]) -> list[Violation]:
    out = []
    requirement = "must be one of: " + ", ".join(allowed)
    for entry in items(struct(spec, "securityContext"), "sysctls"):
        if not isinstance(entry, dict):
            continue  # an entry that is not an object cannot be read: skip it
        name = string(entry, "name")
        if name not in allowed:
            out.append(violation(f"spec.securityContext.sysctls[{name}]", requirement, name,
                                 SYSCTLS))
    return out


def sysctls_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    return _sysctls(spec, SYSCTLS_ALLOWED_1_0)


def sysctls_v1_27(meta: Meta, spec: Spec) -> list[Violation]:
    return _sysctls(spec, SYSCTLS_ALLOWED_1_27)


def sysctls_v1_29(meta: Meta, spec: Spec) -> list[Violation]:
    return _sysctls(spec, SYSCTLS_ALLOWED_1_29)


def sysctls_v1_32(meta: Meta, spec: Spec) -> list[Violation]:
    return _sysctls(spec, SYSCTLS_ALLOWED_1_32)


# --------------------------------------------------------------------------------------------
# baseline: windowsHostProcess (check_windowsHostProcess.go, 1.0)

WINDOWS_HOST_PROCESS = _rule("baseline", "windowsHostProcess")


def windows_host_process_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    sources = [("spec.securityContext", struct(spec, "securityContext"))]
    sources += [(f"{c.path}.securityContext", c.security_context) for c in containers(spec)]
    return [
        violation(f"{prefix}.windowsOptions.hostProcess", "must be unset or false", True,
                  WINDOWS_HOST_PROCESS)
        for prefix, sc in sources
        if opt_bool(struct(sc, "windowsOptions"), "hostProcess") is True
    ]


# --------------------------------------------------------------------------------------------
# baseline: hostProbesAndHostLifecycle (check_hostProbesAndhostLifecycle.go, 1.34)

HOST_PROBES = _rule("baseline", "hostProbesAndHostLifecycle")


def host_probes_and_host_lifecycle_v1_34(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    for c in containers(spec):
        handlers = [(p, struct(c.fields, p))
                    for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        lifecycle = struct(c.fields, "lifecycle")
        handlers += [(f"lifecycle.{h}", struct(lifecycle, h)) for h in ("postStart", "preStop")]
        for where, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = string(struct(handler, action), "host")
                if host:
                    out.append(violation(f"{c.path}.{where}.{action}.host",
                                         "must be unset or empty", host, HOST_PROBES))
    return out


# --------------------------------------------------------------------------------------------
# restricted: restrictedVolumes (check_restrictedVolumes.go, 1.0, overrides hostPathVolumes)

RESTRICTED_VOLUMES = _rule("restricted", "restrictedVolumes")
VOLUMES_ALLOWED = (
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
    "persistentVolumeClaim", "projected", "secret",
)
# Upstream names these in this order when it reports the offending type.
VOLUMES_RESTRICTED = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
    "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
    "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
    "scaleIO", "storageos",
)


def restricted_volumes_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    requirement = "must be one of: " + ", ".join(VOLUMES_ALLOWED)
    for index, volume in enumerate(items(spec, "volumes")):
        if not isinstance(volume, dict):
            continue  # a volume that is not an object cannot be read: skip it
        if any(struct(volume, source) is not None for source in VOLUMES_ALLOWED):
            continue
        kind = next((s for s in VOLUMES_RESTRICTED if struct(volume, s) is not None), None)
        shown: Any = kind
        if kind is None:
            sources = sorted(str(k) for k, v in volume.items() if isinstance(v, dict))
            if not sources:
                continue  # no source at all: API defaulting makes it an emptyDir, as upstream
            shown = sources  # upstream's "unknown": a source type it does not recognise
        out.append(violation(f"spec.volumes[{label(volume, index)}]", requirement, shown,
                             RESTRICTED_VOLUMES))
    return out


# --------------------------------------------------------------------------------------------
# restricted: allowPrivilegeEscalation (check_allowPrivilegeEscalation.go, 1.8; 1.25 Windows)

ALLOW_PRIVILEGE_ESCALATION = _rule("restricted", "allowPrivilegeEscalation")


def allow_privilege_escalation_v1_8(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    for c in containers(spec):
        value = opt_bool(c.security_context, "allowPrivilegeEscalation")
        if value is not False:
            out.append(violation(f"{c.path}.securityContext.allowPrivilegeEscalation",
                                 "must be false", value, ALLOW_PRIVILEGE_ESCALATION))
    return out


def allow_privilege_escalation_v1_25(meta: Meta, spec: Spec) -> list[Violation]:
    # API validation forbids the field on Windows pods, so they are admitted without it.
    if is_windows(spec):
        return []
    return allow_privilege_escalation_v1_8(meta, spec)


# --------------------------------------------------------------------------------------------
# restricted: runAsNonRoot (check_runAsNonRoot.go, 1.0; 1.35 relaxed for hostUsers: false)

RUN_AS_NON_ROOT = _rule("restricted", "runAsNonRoot")


def run_as_non_root_v1_0(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    pod_value = opt_bool(struct(spec, "securityContext"), "runAsNonRoot")
    if pod_value is False:
        out.append(violation("spec.securityContext.runAsNonRoot", "must be true or unset",
                             False, RUN_AS_NON_ROOT))
    for c in containers(spec):
        value = opt_bool(c.security_context, "runAsNonRoot")
        path = f"{c.path}.securityContext.runAsNonRoot"
        if value is False:
            out.append(violation(path, "must be true or unset", False, RUN_AS_NON_ROOT))
        elif value is None and pod_value is not True:
            # Upstream: "pod or container must set securityContext.runAsNonRoot=true".
            out.append(violation(path,
                                 "must be true (or set spec.securityContext.runAsNonRoot=true)",
                                 None, RUN_AS_NON_ROOT))
    return out


def run_as_non_root_v1_35(meta: Meta, spec: Spec) -> list[Violation]:
    # KEP-127: root inside a user namespace is unprivileged on the host.
    if host_users_false(spec):
        return []
    return run_as_non_root_v1_0(meta, spec)


# --------------------------------------------------------------------------------------------
# restricted: runAsUser (check_runAsUser.go, 1.23; 1.35 relaxed for hostUsers: false)

RUN_AS_USER = _rule("restricted", "runAsUser")


def run_as_user_v1_23(meta: Meta, spec: Spec) -> list[Violation]:
    sources = [("spec.securityContext", struct(spec, "securityContext"))]
    sources += [(f"{c.path}.securityContext", c.security_context) for c in containers(spec)]
    return [
        violation(f"{prefix}.runAsUser", "must be non-zero or unset", 0, RUN_AS_USER)
        for prefix, sc in sources
        if opt_int(sc, "runAsUser") == 0
    ]


def run_as_user_v1_35(meta: Meta, spec: Spec) -> list[Violation]:
    # KEP-127: uid 0 inside a user namespace is unprivileged on the host.
    if host_users_false(spec):
        return []
    return run_as_user_v1_23(meta, spec)


# --------------------------------------------------------------------------------------------
# restricted: seccompProfile_restricted (check_seccompProfile_restricted.go, 1.19; 1.25
# Windows; overrides seccompProfile_baseline)

SECCOMP_RESTRICTED = _rule("restricted", "seccompProfile_restricted")


def seccomp_profile_restricted_v1_19(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    pod_profile = struct(struct(spec, "securityContext"), "seccompProfile")
    pod_ok = False
    if pod_profile is not None:
        if string(pod_profile, "type") in SECCOMP_TYPES:
            pod_ok = True
        else:
            out.append(violation("spec.securityContext.seccompProfile.type",
                                 "must be RuntimeDefault or Localhost",
                                 opt_string(pod_profile, "type"), SECCOMP_RESTRICTED))
    for c in containers(spec):
        profile = struct(c.security_context, "seccompProfile")
        path = f"{c.path}.securityContext.seccompProfile.type"
        if profile is not None:
            if string(profile, "type") not in SECCOMP_TYPES:
                out.append(violation(path, "must be RuntimeDefault or Localhost",
                                     opt_string(profile, "type"), SECCOMP_RESTRICTED))
        elif not pod_ok:
            out.append(violation(
                path,
                "must be RuntimeDefault or Localhost "
                "(or set spec.securityContext.seccompProfile.type)",
                None, SECCOMP_RESTRICTED))
    return out


def seccomp_profile_restricted_v1_25(meta: Meta, spec: Spec) -> list[Violation]:
    # API validation forbids seccompProfile on Windows pods, so they are admitted without it.
    if is_windows(spec):
        return []
    return seccomp_profile_restricted_v1_19(meta, spec)


# --------------------------------------------------------------------------------------------
# restricted: capabilities_restricted (check_capabilities_restricted.go, 1.22; 1.25 Windows;
# overrides capabilities_baseline)

CAPABILITIES_RESTRICTED = _rule("restricted", "capabilities_restricted")


def capabilities_restricted_v1_22(meta: Meta, spec: Spec) -> list[Violation]:
    out = []
    for c in containers(spec):
        caps = struct(c.security_context, "capabilities")
        drop = items(caps, "drop")
        if "ALL" not in drop:
            # Upstream compares the exact string "ALL"; "all" does not count.
            shown = caps.get("drop") if caps is not None else None
            out.append(violation(f"{c.path}.securityContext.capabilities.drop",
                                 'must contain "ALL"', shown, CAPABILITIES_RESTRICTED))
        bad = sorted({a for a in items(caps, "add")
                      if isinstance(a, str) and a != "NET_BIND_SERVICE"})
        if bad:
            out.append(violation(f"{c.path}.securityContext.capabilities.add",
                                 'must be unset or only contain "NET_BIND_SERVICE"', bad,
                                 CAPABILITIES_RESTRICTED))
    return out


def capabilities_restricted_v1_25(meta: Meta, spec: Spec) -> list[Violation]:
    # API validation forbids capabilities on Windows pods, so they are admitted without them.
    if is_windows(spec):
        return []
    return capabilities_restricted_v1_22(meta, spec)
