"""The Airflow rules of a ValidationPolicy (`spec.rules`), one small function per rule.

Modelled on pod-security-admission: every rule has the signature
`(pod, params) -> list[Violation]` and is listed once in `AIRFLOW_RULES`, whose keys are the
rule ids of the ValidationPolicy schema. Rules read the pod as Kubernetes would decode and
default it (missing, null or wrongly typed fields count as unset) and never raise.

Every container kind counts (initContainers, containers, ephemeralContainers): the KPO XCom
sidecar `airflow-xcom-sidecar` is judged like any other container, so a mutation policy can
make it compliant instead of it being silently exempt.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from webhook import budget
from webhook.kube.quantity import parse_quantity
from webhook.kube.tolerations import DEFAULT_TOLERATION_KEYS
from webhook.pod.reading import (
    containers,
    list_at,
    map_at,
    path_key,
    spec_of,
    str_at,
)
from webhook.rules import require_checked_in
from webhook.violations import Violation, violation

RuleFn = Callable[[dict, Mapping], list[Violation]]

DOCKER_HUB = "docker.io"


# ---------------------------------------------------------------------------------------------
# images


@dataclass(frozen=True)
class ImageRef:
    """An image reference, normalised as Docker does: `alpine` is docker.io/library/alpine."""

    name: str  # registry/repository, e.g. docker.io/apache/airflow
    tag: str
    digest: str


def _is_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def _normalise_name(name: str) -> str:
    first, sep, rest = name.partition("/")
    if sep and _is_registry(first):
        registry, path = first.lower(), rest
    else:
        registry, path = DOCKER_HUB, name
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return f"{registry}/{path}"


def parse_image(image: str) -> ImageRef:
    name, _, digest = image.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = ""
    if colon > slash:  # a colon before the last slash is a registry port, not a tag
        name, tag = name[:colon], name[colon + 1:]
    return ImageRef(_normalise_name(name), tag, digest)


def normalise_registry_prefix(prefix: str) -> str:
    """A prefix is read as written, with Docker Hub as the default registry: `ghcr.io/acme/` ->
    ghcr.io/acme, `apache` -> docker.io/apache (an organisation), `library` -> the official
    images docker.io/library, `docker.io` -> all of Docker Hub."""
    prefix = prefix.rstrip("/")
    first, _, rest = prefix.partition("/")
    if _is_registry(first):
        registry = DOCKER_HUB if first.lower() == "index.docker.io" else first.lower()
        return f"{registry}/{rest}" if rest else registry
    return f"{DOCKER_HUB}/{prefix}"


def _under_prefix(name: str, prefix: str) -> bool:
    # Whole path segments only: ghcr.io/acme allows ghcr.io/acme/ml, not ghcr.io/acme-evil/ml.
    return name == prefix or name.startswith(prefix + "/")


def check_images(pod: dict, params: Mapping) -> list[Violation]:
    allowed = [p for p in params.get("allowedRegistries") or () if isinstance(p, str)]
    prefixes = [normalise_registry_prefix(p) for p in allowed]
    forbid_latest = params.get("forbidLatestTag") is True
    found = []
    for container in containers(pod):
        image = str_at(container.fields, "image")
        if not image:
            continue  # kube-apiserver rejects a container without an image on its own
        ref = parse_image(image)
        path = f"{container.path}.image"
        if "allowedRegistries" in params and not any(_under_prefix(ref.name, p)
                                                     for p in prefixes):
            shown = ", ".join(allowed) if allowed else "none allowed"
            found.append(violation(path, f"must come from an allowed registry ({shown}); "
                                         f"it is read as {ref.name}", image, "airflow: images"))
        if forbid_latest and not ref.digest:
            if ref.tag == "latest":
                found.append(violation(path, "must be pinned to a version tag or a digest, "
                                             "not :latest", image, "airflow: images"))
            elif not ref.tag:
                found.append(violation(path, "must be pinned to a version tag or a digest "
                                             "(no tag means :latest)", image, "airflow: images"))
    return found


# ---------------------------------------------------------------------------------------------
# resources


def _quantity(value: Any) -> Decimal | None:
    try:  # parse_quantity refuses booleans and anything that is not a number or a string
        return parse_quantity(value)
    except (ValueError, TypeError, ArithmeticError):
        return None


def _effective_requests(resources: dict) -> dict:
    # API defaulting: a resource with a limit and no request gets the limit as its request.
    return {**map_at(resources, "limits"), **map_at(resources, "requests")}


def check_resources(pod: dict, params: Mapping) -> list[Violation]:
    found = []
    for container in containers(pod):
        if container.kind == "ephemeralContainers":
            continue  # the API forbids resources on ephemeral containers: nothing to require
        resources = map_at(container.fields, "resources")
        present = {"requests": _effective_requests(resources),
                   "limits": map_at(resources, "limits")}
        for field, required_key, bound_key in (("requests", "requireRequests", "maxRequests"),
                                               ("limits", "requireLimits", "maxLimits")):
            values = present[field]
            for name in params.get(required_key) or ():
                if name not in values:
                    found.append(violation(
                        f"{container.path}.resources.{field}{path_key(name)}", "must be set",
                        None, "airflow: resources"))
            for name, bound in (params.get(bound_key) or {}).items():
                if name not in values:
                    continue
                limit, have = _quantity(bound), _quantity(values[name])
                if limit is None:
                    continue  # the compiler already refuses a policy with a bad quantity
                if have is None or have > limit:
                    found.append(violation(
                        f"{container.path}.resources.{field}{path_key(name)}",
                        f"must be at most {bound}", values[name], "airflow: resources"))
    return found


# ---------------------------------------------------------------------------------------------
# serviceAccounts, automountServiceAccountToken


def service_account_name(pod: dict) -> str:
    """As admitted: serviceAccountName, else the deprecated serviceAccount, else "default"."""
    spec = spec_of(pod)
    return str_at(spec, "serviceAccountName") or str_at(spec, "serviceAccount") or "default"


def check_service_accounts(pod: dict, params: Mapping) -> list[Violation]:
    allowed = [a for a in params.get("allowed") or () if isinstance(a, str)]
    name = service_account_name(pod)
    if any(fnmatchcase(name, pattern) for pattern in allowed):
        return []
    return [violation("spec.serviceAccountName",
                      f"must be one of {', '.join(allowed) or '(none allowed)'}", name,
                      "airflow: serviceAccounts")]


def check_automount_token(pod: dict, params: Mapping) -> list[Violation]:
    if params.get("allowed") is not False:
        return []
    value = spec_of(pod).get("automountServiceAccountToken")
    if value is False:
        return []
    # Unset means the service account decides, which this webhook cannot see: require false.
    return [violation("spec.automountServiceAccountToken", "must be false",
                      value if isinstance(value, bool) else None,
                      "airflow: automountServiceAccountToken")]


# ---------------------------------------------------------------------------------------------
# hostPaths


def _under_dir(path: str, prefix: str) -> bool:
    prefix = posixpath.normpath(prefix) if prefix.startswith("/") else ""
    if not prefix:
        return False
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/")


def check_host_paths(pod: dict, params: Mapping) -> list[Violation]:
    prefixes = [p for p in params.get("allowedPrefixes") or () if isinstance(p, str)]
    found = []
    for index, volume in enumerate(list_at(spec_of(pod), "volumes")):
        if not isinstance(volume, dict) or not isinstance(volume.get("hostPath"), dict):
            continue
        raw = str_at(volume["hostPath"], "path")
        # /data/../etc is /etc: judge the directory the kubelet would really mount.
        path = posixpath.normpath(raw) if raw.startswith("/") else ""
        if path and ".." not in raw.split("/") and any(_under_dir(path, p) for p in prefixes):
            continue
        name = str_at(volume, "name") or str(index)
        found.append(violation(
            f"spec.volumes[{name}].hostPath.path",
            f"must lie under {', '.join(prefixes) if prefixes else '(no host path allowed)'}",
            volume["hostPath"].get("path"), "airflow: hostPaths"))
    return found


# ---------------------------------------------------------------------------------------------
# nodeSelectors, tolerations


def check_node_selectors(pod: dict, params: Mapping) -> list[Violation]:
    allowed = params.get("allowed") or {}
    found = []
    selector = map_at(spec_of(pod), "nodeSelector")
    for key, value in sorted(selector.items(), key=lambda kv: str(kv[0])):
        path = f"spec.nodeSelector{path_key(str(key))}"
        values = allowed.get(key)
        if values is None:
            found.append(violation(path, f"must not be set (allowed keys: "
                                         f"{', '.join(sorted(allowed)) or 'none'})", value,
                                   "airflow: nodeSelectors"))
        elif not (isinstance(value, str) and any(fnmatchcase(value, v) for v in values)):
            found.append(violation(path, f"must be one of {', '.join(values)}", value,
                                   "airflow: nodeSelectors"))
    return found


def check_tolerations(pod: dict, params: Mapping) -> list[Violation]:
    allowed = [k for k in params.get("allowedKeys") or () if isinstance(k, str)]
    found = []
    for index, toleration in enumerate(list_at(spec_of(pod), "tolerations")):
        if not isinstance(toleration, dict):
            continue
        key = str_at(toleration, "key")
        if key in DEFAULT_TOLERATION_KEYS and str_at(toleration, "effect") == "NoExecute":
            continue
        if key and any(fnmatchcase(key, pattern) for pattern in allowed):
            continue
        # An empty key with operator Exists tolerates every taint: never allowed by key.
        found.append(violation(f"spec.tolerations[{index}].key",
                               f"must be one of {', '.join(allowed) or '(none allowed)'}", key,
                               "airflow: tolerations"))
    return found


# The one registry table: rule id (a key of ValidationPolicy spec.rules) -> check.
AIRFLOW_RULES: Mapping[str, RuleFn] = {
    "images": check_images,
    "resources": check_resources,
    "serviceAccounts": check_service_accounts,
    "hostPaths": check_host_paths,
    "nodeSelectors": check_node_selectors,
    "tolerations": check_tolerations,
    "automountServiceAccountToken": check_automount_token,
}


def rule_name(rule_id: str) -> str:
    """The `Violation.rule` a rule reports under, e.g. `airflow: images`."""
    return f"airflow: {rule_id}"


require_checked_in(__name__, map(rule_name, AIRFLOW_RULES))


def evaluate_rules(pod: dict, rules: Mapping[str, Mapping]) -> list[Violation]:
    """Run the configured rules; a rule that fails on an unreadable pod fails closed."""
    found: set[Violation] = set()
    pod = pod if isinstance(pod, dict) else {}
    for rule_id, params in rules.items():
        budget.check()
        check = AIRFLOW_RULES.get(rule_id)
        if check is None:
            continue  # the schema admits only the ids above
        try:
            found.update(check(pod, params if isinstance(params, Mapping) else {}))
        except Exception as exc:  # an unreadable pod must not pass silently
            found.add(violation("spec", "must be readable by the Airflow rules",
                                type(exc).__name__, rule_name(rule_id)))
    return sorted(found)
