"""Judging a later write to a live pod: an UPDATE (of the pod, its ephemeral containers, its
resize) or a binding, by one of Airflow's accounts.

Pure: the old pod, the new pod, the subresource, the writer and the policy set in, one
ValidationResult out (the same shape a create is judged into, so every caller answers it the
same way). Nothing here raises on a malformed pod.

What a write is held to, and why:

- **The same rules as a create, on what changed.** The new pod is judged exactly as a create
  would be (Pod Security, Airflow rules, the Envelope), and so is the old one; a violation the
  new pod has and the old one did not is the write's doing. So an image swapped for one the
  image rules refuse, a toleration added, a node pool or hostname pin added while the pod is
  gated, a privileged ephemeral container, a resize past the Envelope's bounds are denied,
  and a pod admitted earlier is never re-denied for state it already had (a policy tightened
  since, say) when Airflow patches its bookkeeping labels.
- **Removing a scheduling gate judges the whole pod again.** The pod is about to be scheduled
  with the placement it was given while gated: every violation counts, old or new.
- **Airflow's own keys stay as Airflow wrote them.** The labels and annotations that say which
  task a pod runs (and our own annotations under the prefix) do not change after the create,
  save Airflow's bookkeeping: `already_checked` (the KubernetesPodOperator), the executor's
  `airflow_executor_done` and `airflow_pod_revoked`, and `airflow-worker` rewritten on an
  executor pod by an account trusted to create executor pods (adoption by a new scheduler).
  Nor is the kubelet's mirror-pod annotation added or removed: the create hooks skip a pod
  that carries it, and the kubelet treats it as a static pod's mirror.
- **A pod that breaks enforced rules is not Airflow's to change beyond its metadata.** The
  worker's Role lets every task patch every pod of its namespace, the scheduler's and the
  API server's too (created by their ReplicaSets with the component accounts and Airflow's
  own Secrets). Such a pod carries enforced violations no Airflow account could create it
  with; a write that leaves them standing adds none, so "only new violations count" would
  admit swapping the scheduler container's image for the task's own, or an ephemeral
  container in its process namespace. A write to the spec of a pod with standing enforced
  violations is refused (`airflow: standingViolations`); its labels, annotations and
  finalizers (all of Airflow's own writes) are still judged as above.
- **Airflow never binds pods.** A binding by Airflow's account is refused: placing pods is the
  kube-scheduler's (whose own bindings the hooks never see).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from webhook.airflow_pods import (
    AIRFLOW_ANNOTATIONS,
    AIRFLOW_LABELS,
    AirflowTask,
    PodType,
    identify,
)
from webhook.hook_selection import MIRROR_POD_ANNOTATION
from webhook.kube.messages import fit_warnings
from webhook.policy.model import PolicySet
from webhook.rules import known, require_checked_in
from webhook.validation.validate import (
    ALLOW_CODE,
    DENY_CODE,
    MODES,
    ValidationResult,
    clean,
    denial_message,
    sorted_messages,
    validate_pod,
)
from webhook.violations import Violation, violation

OWNED_METADATA_RULE = known("airflow: ownedMetadata")
BINDING_RULE = known("airflow: binding")
STANDING_RULE = known("airflow: standingViolations")
CONNECT_RULE = known("airflow: exec")
WRITE_RULES = (OWNED_METADATA_RULE, BINDING_RULE, STANDING_RULE, CONNECT_RULE)
require_checked_in(__name__, WRITE_RULES)
# The one container Airflow runs commands in: the KubernetesPodOperator reads (and stops) its
# XCom sidecar with pods/exec. Every other exec or attach by Airflow's accounts is a task
# reaching into a pod it did not start, the scheduler's included.
XCOM_SIDECAR = "airflow-xcom-sidecar"
CONNECTS = ("exec", "attach")
# Airflow's bookkeeping on live pods (airflow.md §1.4): these may be added, changed, removed.
BOOKKEEPING_LABELS = frozenset({"already_checked", "airflow_executor_done",
                                "airflow_pod_revoked"})
ADOPTION_LABEL = "airflow-worker"  # the executor's job id, rewritten when a scheduler adopts
# Added on adoption by providers >= 10.25 when Airflow core has BaseExecutor.get_task_key
# (newer than 3.3.2): the TI's UUID, written once onto a pod that lacked it.
ADOPTION_ANNOTATION = "task_instance_id"
BINDING = "binding"
SUBRESOURCES = ("", "ephemeralcontainers", "resize")


def judge_connect(options: Any, pod_name: str, policies: PolicySet, namespace: str = "",
                  username: str | None = None, subresource: str = "exec") -> ValidationResult:
    """Judge a command run in a pod (CONNECT pods/exec or pods/attach): `options` is the
    PodExecOptions / PodAttachOptions kube-apiserver sends, naming the container."""
    container = _map(options).get("container")
    pod = {"metadata": {"name": pod_name}}
    task = identify({}, namespace, airflow_writer=policies.settings.is_airflow_identity(username))
    if subresource == "exec" and container == XCOM_SIDECAR:
        return _result(pod, task, [], [], policies, username, what=subresource)
    return _result(pod, task, [violation(
        f"{subresource}.container", f"must be {XCOM_SIDECAR}: Airflow's accounts run commands "
        "only in a KubernetesPodOperator's XCom sidecar, never in another container (a task "
        "holding the worker's token could read the scheduler's environment and token)",
        container if isinstance(container, str) else None, CONNECT_RULE)], [], policies,
        username, what=subresource)


def judge_write(old: Any, new: Any, policies: PolicySet, namespace: str = "",
                username: str | None = None, subresource: str = "", *,
                today: date | None = None) -> ValidationResult:
    """Judge one write: `old` and `new` are the pod before and after it (for a binding, `new`
    is the Binding and `old` is unused)."""
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    writer = policies.settings.is_airflow_identity(username)
    if subresource == BINDING:
        task = identify({}, namespace, airflow_writer=writer)
        target = _map(_map(new, "target")).get("name")
        return _result(new, task, [violation(
            "binding", "must be left to the kube-scheduler: Airflow's accounts never bind pods "
            "to nodes", target, BINDING_RULE)], [], policies, username)
    today = today or date.today()
    before = validate_pod(old, policies, namespace, username, today=today)
    after = validate_pod(new, policies, namespace, username, today=today)
    task = after.task
    had = {v for m in MODES for v in before.violations[m]} | {v for v, _ in before.waived}
    ungated = _gates(old) and len(_gates(new)) < len(_gates(old))
    denied = [v for v in after.violations["enforce"] if ungated or v not in had]
    denied += standing_spec_change(old, new, before.violations["enforce"])
    warned = [v for v in after.violations["warn"] if v not in had]
    denied += owned_metadata_changes(old, new, policies, namespace, username)
    return _result(new, task, denied, warned, policies, username,
                   policy_names=after.policies, exempted=after.exempted)


def standing_spec_change(old: dict, new: dict, standing: tuple[Violation, ...]
                         ) -> list[Violation]:
    """A violation when a write changes the spec of a pod that already breaks enforced rules:
    such a pod (the scheduler's, the API server's, one admitted before a policy tightened) is
    not one an Airflow account could create as it is, so only its metadata may change."""
    if not standing:
        return []
    changed = sorted(key for key in set(_map(old, "spec")) | set(_map(new, "spec"))
                     if _map(old, "spec").get(key) != _map(new, "spec").get(key))
    if not changed:
        return []
    rules = ", ".join(sorted({v.rule for v in standing}))
    return [violation("spec", f"must not change on a pod that already breaks enforced rules "
                      f"({rules}): Airflow's accounts may change only its labels, annotations "
                      "and finalizers", changed, STANDING_RULE)]


def owned_metadata_changes(old: dict, new: dict, policies: PolicySet, namespace: str,
                           username: str | None) -> list[Violation]:
    """A violation for each of Airflow's keys (and ours) a write adds, changes or removes,
    but for Airflow's bookkeeping."""
    prefix = policies.settings.annotation_prefix
    old_task = identify(old, namespace)
    adopter = (old_task.pod_type is PodType.EXECUTOR and username is not None
               and policies.settings.creator_trusted(old_task.namespace, username,
                                                     PodType.EXECUTOR) is not False)
    found = []
    for field_name, owned in (("labels", AIRFLOW_LABELS), ("annotations", AIRFLOW_ANNOTATIONS)):
        before, after = _meta(old, field_name), _meta(new, field_name)
        for key in sorted(set(before) | set(after)):
            if before.get(key) == after.get(key):
                continue
            ours = field_name == "annotations" and key.startswith(prefix)
            mirror = field_name == "annotations" and key == MIRROR_POD_ANNOTATION
            if key not in owned and not ours and not mirror:
                continue
            if field_name == "labels" and key in BOOKKEEPING_LABELS:
                continue
            if (field_name == "labels" and key == ADOPTION_LABEL and adopter
                    and key in before and key in after):
                continue
            if (field_name == "annotations" and key == ADOPTION_ANNOTATION and adopter
                    and key not in before and isinstance(after.get(key), str)):
                continue
            requirement = (MIRROR_REQUIREMENT if mirror
                           else _owned_requirement(key, ours, before.get(key)))
            found.append(violation(f"metadata.{field_name}.{key}", requirement,
                                   after.get(key), OWNED_METADATA_RULE))
    return found


MIRROR_REQUIREMENT = ("must not be added or removed: only the kubelet writes it, on the "
                      "mirror of a static pod; the hooks skip such pods and the kubelet stops "
                      "managing a pod that carries it")


def _owned_requirement(key: str, ours: bool, was: Any) -> str:
    keep = "be removed" if was is None else f"stay {clean(repr(was))}"
    whose = "the webhook's record of what it applied" if ours else "Airflow's own key"
    adoption = (" (only an account trusted to create executor pods rewrites it, when it "
                "adopts an executor pod)" if key == ADOPTION_LABEL else "")
    return f"must {keep} after the pod is created: {whose}{adoption}"


def _result(pod: dict, task: AirflowTask, denied: list[Violation], warned: list[Violation],
            policies: PolicySet, username: str | None, *, policy_names: tuple[str, ...] = (),
            exempted: tuple[str, ...] = (), what: str = "update") -> ValidationResult:
    denied = sorted(set(denied))
    warned = sorted(set(warned) - set(denied))
    rules = tuple(sorted({v.rule for v in (*denied, *warned)}))
    audit = {"policy-revision": policies.revision, "decision": "deny" if denied else "allow",
             "write": "judged"}
    if rules:
        audit["rules-violated"] = ", ".join(rules)
    if username:
        audit["writer"] = username
    message = (denial_message(pod, task, denied).replace(" violates ", f" {what} violates ", 1)
               if denied else "")
    return ValidationResult(
        task=task, allowed=not denied, code=DENY_CODE if denied else ALLOW_CODE,
        message=message,
        violations={"enforce": tuple(denied), "warn": tuple(warned), "audit": ()},
        warnings=tuple(fit_warnings(sorted_messages(warned))),
        audit_annotations={k: clean(v) for k, v in audit.items()},
        policies=policy_names, rules_violated=rules, exempted=exempted)


def _gates(pod: dict) -> list[Any]:
    gates = _map(pod, "spec").get("schedulingGates")
    return gates if isinstance(gates, list) else []


def _map(value: Any, key: str | None = None) -> Mapping[str, Any]:
    if key is not None:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def _meta(pod: dict, field_name: str) -> dict[str, Any]:
    return dict(_map(_map(pod, "metadata"), field_name))

