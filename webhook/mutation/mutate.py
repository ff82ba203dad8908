"""The mutating hook's decision: which policies apply to a pod, and the patch that applies them.

Order (later wins): the pod as Airflow built it fills in under the cluster templates' defaults,
then profiles, per-DAG task policies, DAG authors' annotations, and last the templates'
locked fields. Pure: pod and policy set in, MutationResult out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from webhook.airflow_pods import AIRFLOW_ANNOTATIONS, AIRFLOW_LABELS, AirflowTask, identify
from webhook.envelope import locks_for
from webhook.hook_selection import selected_by_hooks
from webhook.mutation.merge import merge_pod
from webhook.mutation.overrides import APPLIED, Refusal, check_allowed, check_result, read_overrides
from webhook.mutation.patch import diff_patch
from webhook.mutation.pod_invariants import (
    keep_limit_only_guarantees,
    keep_pod_valid,
    let_plugins_recompute,
)
from webhook.pod.field_paths import with_value
from webhook.pod.lists import CONTAINER_LISTS
from webhook.policy.model import PodTemplate, PolicySet
from webhook.rules import known

KEEP_IDENTITY_RULE = known("airflow: keepIdentity")


@dataclass(frozen=True)
class MutationResult:
    task: AirflowTask
    pod: dict
    patch: list[dict]
    applied: tuple[str, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    covered: bool = True  # False: no policy applies to this pod (foreign pods)

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def malformed(self) -> bool:
        return any(r.malformed for r in self.refusals)


def mutate_pod(
    pod: dict, policies: PolicySet, namespace: str = "", username: str | None = None
) -> MutationResult:
    task = identify(pod, namespace, airflow_writer=policies.settings.is_airflow_identity(username))
    if not policies.covers(task):
        return MutationResult(task, pod, [], covered=False)
    problem = malformed_shape(pod)
    if problem:
        # kube-apiserver never sends such a pod; patching it could only guess. Leave it to
        # the validating hook (and Kubernetes' own validation) to refuse.
        return MutationResult(task, pod, [], warnings=(f"pod not mutated: {problem}",))
    templates = policies.templates_for(task)
    warnings: list[str] = []
    # An unmarked pod claims no Airflow identity to doubt; nothing is granted to it anyway.
    trusted = (True if username is None or task.unmarked
               else policies.settings.creator_trusted(task.namespace, username, task.pod_type))
    applied = [f"PodTemplate/{t.name}" for t in templates]
    overlays: list[dict] = []
    if trusted is False:
        # Anyone can label a pod as Airflow's: only the trusted creators get profiles and
        # overrides; everyone still gets the safe defaults and locks.
        warnings.append(f"{username} is not a trusted creator of Airflow pods in namespace "
                        f"{task.namespace}: profiles, task policies and override annotations "
                        "were not applied")
    else:
        request = read_overrides(pod, task, policies)
        refusals = list(request.refusals)
        refusals += check_allowed(request, task, policies.override_policy_for(task), templates,
                                  policies.envelopes_for(task),
                                  policies.settings.node_pool_label)
        if refusals:
            return MutationResult(task, pod, [], refusals=tuple(sorted(set(refusals))))
        for name in request.profiles:
            overlays.append(policies.profiles[name].template)
            applied.append(f"Profile/{name}")
        for policy in policies.task_policies_for(task):
            overlays.append(policy.template)
            applied.append(f"TaskPolicy/{policy.name}")
        overlays.extend(a.fragment for a in request.annotations)
        if request.annotations:
            applied.append("annotations:" + ",".join(
                a.key.removeprefix(policies.settings.annotation_prefix)
                for a in request.annotations))
    result = _compose_all(pod, templates, overlays)
    if trusted is not False and request.annotations:
        # Held to the envelope's whole-pod bounds against the same pod without them.
        before = overlays[:len(overlays) - len(request.annotations)]
        refusals = check_result(result, lambda: _compose_all(pod, templates, before), request,
                                policies.envelopes_for(task),
                                policies.settings.node_pool_label, templates)
        if refusals:
            return MutationResult(task, pod, [], refusals=tuple(sorted(set(refusals))))
    result = _explain(result, policies, applied)
    broken = identity_changes(pod, result)
    if broken:
        # Checked on the result, whatever produced it: a pod that would lose what identifies
        # it, or drop out of the validating hook's selection, is never admitted by us.
        return MutationResult(task, pod, [], refusals=tuple(
            Refusal("", path, reason, KEEP_IDENTITY_RULE) for path, reason in broken))
    return MutationResult(task, result, diff_patch(pod, result), tuple(applied),
                          warnings=tuple(warnings))


def _compose_all(pod: dict, templates: list[PodTemplate], overlays: list[dict]) -> dict:
    result = _compose(pod, templates, overlays)
    for _ in range(2):
        # A fragment that adds a container: defaults for "every container" must cover it too,
        # exactly as kube-apiserver's reinvocation would make them.
        if _container_names(result) == _container_names(pod):
            break
        previous, result = result, _compose(result, templates, overlays)
        if _container_names(result) == _container_names(previous):
            break
    result = keep_pod_valid(pod, result)
    result = let_plugins_recompute(pod, result)
    return _keep_airflow_metadata(pod, result)


def identity_changes(original: dict, result: dict) -> list[tuple[str, str]]:
    """(field, reason) for each Airflow label or annotation of `original` that `result`
    lacks or changes, and for a pod the hooks select that they would no longer select."""
    changes = []
    for field_name, owned in (("labels", AIRFLOW_LABELS), ("annotations", AIRFLOW_ANNOTATIONS)):
        before, after = _meta_map(original, field_name), _meta_map(result, field_name)
        for key in sorted(k for k in before if k in owned):
            if key not in after:
                changes.append((f"metadata.{field_name}.{key}",
                                "Airflow's own key would be removed by the mutation"))
            elif after[key] != before[key]:
                changes.append((f"metadata.{field_name}.{key}",
                                "Airflow's own key would be changed by the mutation"))
    if selected_by_hooks(original) and not selected_by_hooks(result):
        changes.append(("metadata", "the mutated pod would no longer be selected by the "
                        "webhooks' matchConditions"))
    return changes


def _meta_map(pod: dict, field_name: str) -> dict:
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    value = meta.get(field_name)
    return value if isinstance(value, dict) else {}


def malformed_shape(pod: dict) -> str | None:
    """Where a pod is not shaped like a Pod at the places a mutation writes, if anywhere."""
    if not isinstance(pod, dict):
        return "the object is not a map"
    meta, spec = pod.get("metadata", {}), pod.get("spec", {})
    if not isinstance(meta, dict):
        return "metadata is not a map"
    for field_name in ("labels", "annotations"):
        if not isinstance(meta.get(field_name, {}), dict):
            return f"metadata.{field_name} is not a map"
    if not isinstance(spec, dict):
        return "spec is not a map"
    for list_name in CONTAINER_LISTS:
        items = spec.get(list_name, [])
        if not isinstance(items, list) or not all(isinstance(c, dict) for c in items):
            return f"spec.{list_name} is not a list of containers"
    return None


def _compose(pod: dict, templates: list[PodTemplate], overlays: list[dict]) -> dict:
    result = pod
    for template in templates:
        result = merge_pod(result, template.template, fragment_wins=False)
    result = keep_limit_only_guarantees(pod, result)
    for fragment in overlays:
        result = merge_pod(result, fragment)
    return _apply_locks(result, templates)


def _container_names(pod: dict) -> tuple:
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    return tuple(
        tuple(c.get("name") for c in spec.get(k) or () if isinstance(c, dict))
        if isinstance(spec.get(k), list) else ()
        for k in CONTAINER_LISTS)


def _apply_locks(pod: dict, templates: list[PodTemplate]) -> dict:
    for lock in locks_for(templates):  # the same locks the envelope holds the final pod to
        # Copy only what the lock touches: shared subtrees keep the patch diff cheap.
        pod = with_value(pod, lock.path, copy.deepcopy(lock.value))
    return pod


def _keep_airflow_metadata(original: dict, result: dict) -> dict:
    """Airflow's own labels and annotations leave exactly as they came in."""
    if result is original:
        return result
    meta_in = original.get("metadata") if isinstance(original.get("metadata"), dict) else {}
    meta_out = result.get("metadata") if isinstance(result.get("metadata"), dict) else {}
    fixed = dict(meta_out)
    for field_name, owned in (("labels", AIRFLOW_LABELS), ("annotations", AIRFLOW_ANNOTATIONS)):
        before = meta_in.get(field_name) if isinstance(meta_in.get(field_name), dict) else {}
        after = meta_out.get(field_name) if isinstance(meta_out.get(field_name), dict) else {}
        if not before and field_name not in meta_out:
            continue
        merged = {k: v for k, v in after.items() if k not in owned}
        merged.update({k: v for k, v in before.items() if k in owned})
        fixed[field_name] = merged
    return {**result, "metadata": fixed}


def _explain(pod: dict, policies: PolicySet, applied: list[str]) -> dict:
    """Record what was applied on the pod itself: `kubectl get pod -o yaml` then says why."""
    if not applied:
        return pod
    meta = dict(pod.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations[policies.settings.annotation_prefix + APPLIED] = (
        f"revision={policies.revision}; " + "; ".join(applied))
    meta["annotations"] = annotations
    return {**pod, "metadata": meta}
