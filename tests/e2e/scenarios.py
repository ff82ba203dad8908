"""The e2e scenario list: pods, who creates them, and what the cluster must do with them.

The same list drives the tests against a real API server (tests/e2e/test_admission.py) and a
check of every expectation against the offline core (tests/e2e/test_offline.py), so a scenario
that passes offline and fails in a cluster points at registration, TLS or the API server, not
at the policies.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import POLICIES
from tests.support.pods import airflow_pod
from webhook.cluster.registration import MUTATING_WEBHOOK, VALIDATING_WEBHOOK

APPLIED = "airflow-pod-webhook.io/applied"
SCHEDULER = "airflow-scheduler"  # trusted in the e2e namespaces by e2e_policies()
E2E_NAMESPACES = "airflow-e2e-*"  # every e2e namespace is airflow-e2e-<something>
KUBE_SYSTEM = "kube-system"
PRIVILEGED_VIOLATION = ("spec.containers[base].securityContext.privileged must be unset or "
                        "false, got true (baseline: privileged)")
PRIVILEGED_OVERRIDE_REFUSAL = ("annotation airflow-pod-webhook.io/pod-override: "
                               "spec.containers[base].securityContext.privileged: may not be "
                               "overridden (OverridePolicy/default allowedFields)")

MUTATED, UNTOUCHED, DENIED = "mutated", "untouched", "denied"


@dataclass(frozen=True)
class Item:
    """A path step selecting the list entry whose `field` equals `value` (tolerations by key)."""

    field: str
    value: Any


def scheduler_username(namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:{SCHEDULER}"


ADMIN = "envtest-admin"  # the e2e admin's client certificate: not one of Airflow's accounts


def creator_of(scenario: Scenario, namespace: str) -> str | None:
    """Who creates the scenario's pod (None: the admin, unimpersonated). Airflow's pods come
    from the scheduler; a foreign pod, and a pod in kube-system, from an account that is not
    Airflow's (every pod Airflow's accounts write is judged, whatever its labels)."""
    if scenario.in_kube_system or scenario.fixture is None:
        return None
    return scheduler_username(namespace)


def e2e_settings(settings_text: str) -> str:
    """The bundled Settings, also trusting the Airflow accounts of each e2e namespace (the
    bundled ones trust the accounts of release `airflow` in namespace `airflow` only)."""
    doc = yaml.safe_load(settings_text)
    # As the bundled entries: the scheduler for both pod types, a worker for KPO pods only.
    doc["spec"]["identity"]["trustedCreators"][:0] = [
        {"namespaces": [E2E_NAMESPACES],
         "usernames": [f"system:serviceaccount:{E2E_NAMESPACES}:{account}"],
         "podTypes": pod_types}
        for account, pod_types in ((SCHEDULER, ["executor", "kpo"]),
                                   ("airflow-worker", ["kpo"]))]
    return yaml.safe_dump(doc, sort_keys=False)


WRITES_NAMESPACES = "airflow-e2e-writes-*"  # tests/e2e/test_writers.py's namespaces
E2E_GATE = "example.com/e2e-gate"
# Later writes are held to a create's image rules: the bundled rules only warn, so the
# writer tests' namespaces enforce the registries of the stock and captured pods' images.
WRITES_POLICY = f"""\
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: ValidationPolicy
metadata:
  name: e2e-writes-images
spec:
  mode: enforce
  match:
    namespaces: ["{WRITES_NAMESPACES}"]
  rules:
    images:
      allowedRegistries: [ghcr.io/acme/, apache/, docker.io/library/busybox]
"""


def e2e_policies(folder: Path) -> Path:
    """A copy of the bundled policies in `folder`, with e2e_settings(), one scheduling gate
    allowed (E2E_GATE) and WRITES_POLICY."""
    shutil.copytree(POLICIES, folder)
    settings = folder / "00-settings.yaml"
    settings.write_text(e2e_settings(settings.read_text()))
    envelope = folder / "45-envelope.yaml"
    gates = "  schedulingGates:\n    allowed: []\n"
    assert gates in envelope.read_text()
    envelope.write_text(envelope.read_text().replace(
        gates, f"  schedulingGates:\n    allowed: [{E2E_GATE}]\n"))
    (folder / "55-e2e-writes.yaml").write_text(WRITES_POLICY)
    return folder


@dataclass(frozen=True)
class Scenario:
    name: str  # also the pod name (DNS-1123)
    fixture: str | None  # tests/fixtures/airflow-pods/<fixture>.json, None: a non-Airflow pod
    outcome: str  # MUTATED, UNTOUCHED or DENIED
    annotations: dict[str, str] = field(default_factory=dict)
    privileged: bool = False
    in_kube_system: bool = False
    # On the created pod: (path, value). A step on a list never counts on a position, since
    # Kubernetes adds entries itself (DefaultTolerationSeconds' tolerations come before any
    # webhook): a string picks the entry with that `name`, an `Item` the entry with a field.
    checks: tuple[tuple[tuple[str, ...], Any], ...] = ()
    # For DENIED: which webhook, the HTTP status, and text its message must contain.
    denied_by: str = ""
    status: int = 0
    message: str = ""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "executor-template-and-profile", "airflow3-executor", MUTATED,
        annotations={"airflow-pod-webhook.io/profiles": "spot"},
        checks=(
            (("spec", "securityContext", "seccompProfile", "type"), "RuntimeDefault"),
            (("spec", "securityContext", "runAsNonRoot"), True),
            (("spec", "containers", "base", "securityContext", "allowPrivilegeEscalation"),
             False),
            (("spec", "containers", "base", "securityContext", "capabilities", "drop"), ["ALL"]),
            (("spec", "nodeSelector", "node-pool"), "spot"),
            (("spec", "tolerations", Item("key", "spot"), "effect"), "NoSchedule"),
            (("metadata", "labels", "dag_id"), "example_dag"),  # Airflow's own, kept
        ),
    ),
    Scenario(
        "override-annotation", "airflow3-executor", MUTATED,
        annotations={"airflow-pod-webhook.io/memory": "6Gi"},
        checks=(
            (("spec", "containers", "base", "resources", "requests", "memory"), "6Gi"),
            (("spec", "containers", "base", "resources", "limits", "memory"), "6Gi"),
        ),
    ),
    Scenario(
        "kpo-xcom-sidecar", "airflow3-kpo-xcom", MUTATED,
        checks=(
            (("spec", "containers", "airflow-xcom-sidecar", "securityContext", "runAsUser"),
             65534),
        ),
    ),
    Scenario(
        "privileged-pod", "airflow3-executor", DENIED, privileged=True,
        denied_by=VALIDATING_WEBHOOK, status=403, message=PRIVILEGED_VIOLATION,
    ),
    Scenario(
        "privileged-override", "airflow3-executor", DENIED,
        annotations={"airflow-pod-webhook.io/pod-override": json.dumps(
            {"spec": {"containers": [{"name": "base",
                                      "securityContext": {"privileged": True}}]}})},
        denied_by=MUTATING_WEBHOOK, status=403, message=PRIVILEGED_OVERRIDE_REFUSAL,
    ),
    Scenario("foreign-pod", None, UNTOUCHED),
    # Airflow labels and privileged, yet created as is: the namespaceSelector skips kube-system.
    Scenario("kube-system-pod", "airflow3-executor", UNTOUCHED, privileged=True,
             in_kube_system=True),
)

BY_NAME = {s.name: s for s in SCENARIOS}


def build_pod(scenario: Scenario, namespace: str) -> dict:
    """The pod to create: a real Airflow pod adapted to the test namespace, or a plain one."""
    if scenario.fixture is None:
        pod: dict = {"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
    else:
        pod = airflow_pod(scenario.fixture)
        pod.pop("status", None)
        for key in ("uid", "resourceVersion", "creationTimestamp", "generateName"):
            pod["metadata"].pop(key, None)
    meta = pod["metadata"]
    meta["name"] = scenario.name
    meta["namespace"] = KUBE_SYSTEM if scenario.in_kube_system else namespace
    if scenario.annotations:
        meta["annotations"] = {**meta.get("annotations", {}), **scenario.annotations}
    if scenario.in_kube_system:
        # No controller creates ServiceAccounts under envtest; kube-system's default SA exists
        # in kind, and the ServiceAccount plugin is off in envtest.
        pod["spec"].pop("serviceAccountName", None)
    if scenario.privileged:
        pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    return copy.deepcopy(pod)


def lookup(obj: Any, path: tuple[Any, ...]) -> Any:
    """Follow `path`; on a list a string step picks the entry with that name, an `Item` the
    entry with that field value (exactly one must match). KeyError if absent."""
    for step in path:
        if isinstance(obj, list) and isinstance(step, (str, Item)):
            field_name, value = (step.field, step.value) if isinstance(step, Item) else ("name",
                                                                                          step)
            matches = [item for item in obj
                       if isinstance(item, dict) and item.get(field_name) == value]
            if len(matches) != 1:
                raise KeyError(f"{len(matches)} entries with {field_name}={value!r}")
            obj = matches[0]
        elif isinstance(obj, list):
            obj = obj[step]
        else:
            obj = obj[step]
    return obj


def check_pod(pod: dict, scenario: Scenario) -> list[str]:
    """Mismatches between a created (or offline-mutated) pod and the scenario; [] when fine."""
    problems = []
    annotations = pod.get("metadata", {}).get("annotations") or {}
    if scenario.outcome == MUTATED and APPLIED not in annotations:
        problems.append(f"no {APPLIED} annotation: the mutating webhook did not patch it")
    if scenario.outcome == UNTOUCHED and APPLIED in annotations:
        problems.append(f"{APPLIED} present: the webhook acted on a pod it must not touch")
    for path, expected in scenario.checks:
        try:
            got = lookup(pod, path)
        except (KeyError, IndexError, TypeError):
            got = "<absent>"
        if got != expected:
            problems.append(f"{'.'.join(map(str, path))}: expected {expected!r}, got {got!r}")
    return problems


def denial_prefix(webhook_name: str) -> str:
    """How kube-apiserver prefixes a webhook's denial (research §1.2, ToStatusErr)."""
    return f'admission webhook "{webhook_name}" denied the request: '
