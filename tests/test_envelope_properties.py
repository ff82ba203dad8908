"""Properties of the envelope on real Airflow pods with the bundled policies (hypothesis).

1. Override annotations (short ones and `pod-override` fragments) are either refused by the
   mutating hook or yield a final pod with no envelope violation: the annotation-time checks
   read the same bounds as the validating hook, so they cannot drift.
2. Whatever a DAG author writes straight into the spec (pod_override, KPO arguments), the
   validating hook reports exactly the envelope rules that an independent, plainly written
   oracle of the bundled envelope finds broken on the final pod.
"""

from __future__ import annotations

import json
from decimal import Decimal

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.pods import DEFAULT_TOLERATIONS, airflow_pod
from tests.support.policies import bundled_policies
from webhook.kube.quantity import parse_quantity
from webhook.mutation.merge import merge_pod
from webhook.mutation.mutate import mutate_pod
from webhook.validation.validate import validate_pod

BUNDLED = bundled_policies()
NS = "data-airflow"
SCHEDULER = "system:serviceaccount:airflow:airflow-scheduler"
P = "airflow-pod-webhook.io/"
PODS = ["airflow2-executor", "airflow2-executor-pod-override", "airflow3-executor",
        "airflow3-executor-pod-override", "airflow3-kpo", "airflow3-kpo-xcom"]

# Values on both sides of every bundled bound (16 cpu and 64Gi per container, 20 and 80Gi per
# pod, 4 GPUs), and names the envelope does not list.
quantities = st.sampled_from(["0", "250m", "1", "4", "15", "16", "17", "400", "512Mi", "8Gi",
                              "63Gi", "64Gi", "65Gi", "100Gi"])
resource_names = st.sampled_from(["cpu", "memory", "ephemeral-storage", "nvidia.com/gpu",
                                  "hugepages-1Gi", "amd.com/gpu", "nvidia.com/mig-1g.5gb"])
# Near the per-container bound in each of several containers: inside one by one, over as a pod.
near_bound = st.fixed_dictionaries({
    "requests": st.fixed_dictionaries({"cpu": st.sampled_from(["8", "11", "15", "16"])},
                                      optional={"memory": st.sampled_from(["40Gi", "64Gi"])})})
resources = st.one_of(near_bound, st.fixed_dictionaries({}, optional={
    "requests": st.dictionaries(resource_names, quantities, max_size=3),
    "limits": st.dictionaries(resource_names, quantities, max_size=3)}))
pools = st.sampled_from(["default", "highmem", "gpu", "spot", "system", "prod-db"])
node_labels = st.sampled_from(["node-pool", "kubernetes.io/arch", "kubernetes.io/hostname"])
expression = st.one_of(
    st.fixed_dictionaries({"key": node_labels, "operator": st.sampled_from(["In", "NotIn"]),
                           "values": st.lists(pools, min_size=1, max_size=2)}),
    st.fixed_dictionaries({"key": node_labels,
                           "operator": st.sampled_from(["Exists", "DoesNotExist"])}))
affinity = st.fixed_dictionaries({"nodeAffinity": st.fixed_dictionaries({}, optional={
    "requiredDuringSchedulingIgnoredDuringExecution": st.fixed_dictionaries({
        "nodeSelectorTerms": st.lists(st.fixed_dictionaries(
            {"matchExpressions": st.lists(expression, min_size=1, max_size=2)}),
            min_size=1, max_size=2)}),
    "preferredDuringSchedulingIgnoredDuringExecution": st.lists(st.fixed_dictionaries({
        "weight": st.just(1),
        "preference": st.fixed_dictionaries(
            {"matchExpressions": st.lists(expression, min_size=1, max_size=2)})}),
        max_size=1)})})
toleration = st.one_of(
    st.fixed_dictionaries({"key": st.sampled_from(["dedicated", "spot", "nvidia.com/gpu",
                                                   "prod"]),
                           "operator": st.just("Equal"),
                           "value": st.sampled_from(["airflow", "true", "x"])},
                          optional={"effect": st.sampled_from(["NoSchedule", "NoExecute"])}),
    st.fixed_dictionaries({"key": st.sampled_from(["dedicated", "spot", ""]),
                           "operator": st.just("Exists")}))
names = {
    "priorityClassName": st.sampled_from(["airflow-high", "system-node-critical"]),
    "serviceAccountName": st.sampled_from(["airflow-worker", "etl", "airflow-scheduler",
                                           "airflow-webserver"]),
    "schedulerName": st.sampled_from(["default-scheduler", "my-scheduler"]),
    "runtimeClassName": st.sampled_from(["kata"]),
    "nodeName": st.sampled_from(["node-7"]),
}
container_names = st.sampled_from(["base", "airflow-xcom-sidecar", "extra", "*"])


def fragment_strategy(direct: bool) -> st.SearchStrategy[dict]:
    """A pod fragment: as an annotation (`direct=False`) or written into the spec."""
    required = {"name": container_names}
    if direct:  # as KPO arguments or a pod_override container: a full container, with image
        required["image"] = st.just("busybox:1.36")
    container = st.fixed_dictionaries(required, optional={
        "resources": resources,
        **({"securityContext": st.fixed_dictionaries({"seccompProfile": st.fixed_dictionaries(
            {"type": st.sampled_from(["RuntimeDefault", "Unconfined"])})})} if direct else {})})
    spec = {
        "containers": st.lists(container, max_size=2, unique_by=lambda c: c["name"]),
        "nodeSelector": st.one_of(st.none(), st.dictionaries(node_labels, pools, max_size=2)),
        "tolerations": st.lists(toleration, max_size=2),
        "affinity": affinity,
        "priorityClassName": names["priorityClassName"],
    }
    if direct:
        spec.update({k: v for k, v in names.items() if k != "priorityClassName"})
        spec["initContainers"] = st.lists(st.fixed_dictionaries({
            "name": st.just("prep"), "image": st.just("busybox:1.36"),
            "resources": resources}), max_size=1)
        spec["containers"] = st.lists(container.filter(lambda c: c["name"] != "*"),
                                      max_size=3, unique_by=lambda c: c["name"])
    return st.fixed_dictionaries({"spec": st.fixed_dictionaries({}, optional=spec)})


short_annotations = st.fixed_dictionaries({}, optional={
    P + "cpu": quantities, P + "cpu-limit": quantities, P + "memory": quantities,
    P + "gpu": st.sampled_from(["1", "4", "5"]), P + "node-pool": pools,
    P + "profiles": st.sampled_from(["small", "highmem", "gpu", "spot", "gpu,spot"])})


def envelope_violations(result) -> list[str]:
    return [v.message for vs in result.violations.values() for v in vs
            if v.rule.startswith("envelope:")]


def envelope_rules(result) -> set[str]:
    return {v.rule for vs in result.violations.values() for v in vs
            if v.rule.startswith("envelope:")}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PODS), short_annotations,
       st.one_of(st.none(), fragment_strategy(direct=False)))
def test_annotations_are_refused_or_leave_the_pod_inside_the_envelope(name, short, fragment):
    pod = airflow_pod(name)
    annotations = dict(short)
    if fragment is not None:
        annotations[P + "pod-override"] = json.dumps(fragment)
    pod["metadata"].setdefault("annotations", {}).update(annotations)
    pod["spec"]["tolerations"] = [*(pod["spec"].get("tolerations") or []),
                                  *DEFAULT_TOLERATIONS]
    mutation = mutate_pod(pod, BUNDLED, NS, SCHEDULER)
    if not mutation.allowed:
        return
    final = jsonpatch.apply_patch(pod, mutation.patch)
    assert envelope_violations(validate_pod(final, BUNDLED, NS, SCHEDULER)) == []
    assert outside_reasons(final) == []  # and the oracle agrees


# ---------------------------------------------------------------------------------------------
# An independent oracle of the bundled envelope (45-envelope.yaml), written plainly.

PER_CONTAINER = {"cpu": Decimal(16), "memory": Decimal(64 * 2**30),
                 "ephemeral-storage": Decimal(100 * 2**30), "nvidia.com/gpu": Decimal(4)}
PER_POD = {"cpu": Decimal(20), "memory": Decimal(80 * 2**30),
           "ephemeral-storage": Decimal(120 * 2**30), "nvidia.com/gpu": Decimal(4)}
POOLS = {"default", "highmem", "gpu", "spot"}
OTHER_LABELS = {"kubernetes.io/arch", "kubernetes.io/os", "topology.kubernetes.io/zone",
                "topology.kubernetes.io/region", "node.kubernetes.io/instance-type"}
FORBIDDEN_ACCOUNT_WORDS = ("scheduler", "webserver", "triggerer", "api-server", "dag-processor",
                           "migrate-database-job", "create-user-job", "cleanup", "statsd",
                           "pgbouncer", "redis", "flower")


def _asks(container: dict) -> dict[str, dict[str, Decimal]]:
    res = container.get("resources") or {}
    limits = {k: parse_quantity(v) for k, v in (res.get("limits") or {}).items()}
    requests = {**limits, **{k: parse_quantity(v) for k, v in
                             (res.get("requests") or {}).items()}}
    return {"requests": requests, "limits": limits}


def _resource_reasons(spec: dict) -> list[str]:
    reasons = []
    containers = spec.get("containers") or []
    inits = spec.get("initContainers") or []
    for c in [*containers, *inits]:
        for field, asked in _asks(c).items():
            for name, q in asked.items():
                if name not in PER_CONTAINER:
                    reasons.append(f"{c['name']} {field} {name} unlisted")
                elif q > PER_CONTAINER[name]:
                    reasons.append(f"{c['name']} {field} {name} over")
    for field in ("requests", "limits"):
        for name, bound in PER_POD.items():
            total = sum((_asks(c)[field].get(name, Decimal(0)) for c in containers), Decimal(0))
            peak = max((_asks(c)[field].get(name, Decimal(0)) for c in inits), default=Decimal(0))
            if max(total, peak) > bound:
                reasons.append(f"pod {field} {name} over")
    return reasons


def _placement_reasons(spec: dict) -> list[str]:
    reasons = []
    if spec.get("nodeName"):
        reasons.append("nodeName")
    for key, value in (spec.get("nodeSelector") or {}).items():
        if (key == "node-pool" and value not in POOLS) or (
                key != "node-pool" and key not in OTHER_LABELS):
            reasons.append(f"nodeSelector {key}")
    node = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    terms = [*(node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
        "nodeSelectorTerms", []),
        *[p["preference"] for p in node.get("preferredDuringSchedulingIgnoredDuringExecution")
          or []]]
    for term in terms:
        for e in term.get("matchExpressions") or []:
            if e["key"] == "node-pool":
                ok = (e["operator"] == "In" and set(e["values"]) <= POOLS) or (
                    e["operator"] == "DoesNotExist")
            else:
                ok = e["key"] in OTHER_LABELS
            if not ok:
                reasons.append(f"affinity {e}")
    for t in spec.get("tolerations") or []:
        key, op = t.get("key", ""), t.get("operator", "Equal")
        if key.startswith("node.kubernetes.io/") and t.get("effect") == "NoExecute":
            continue
        ok = (key == "dedicated" and op == "Equal" and t.get("value") == "airflow") or (
            key in ("spot", "nvidia.com/gpu"))
        if not ok:
            reasons.append(f"toleration {t}")
    return reasons


def outside_reasons(pod: dict) -> list[str]:
    return [reason for _, reason in outside(pod)]


def outside(pod: dict) -> list[tuple[str, str]]:
    """(envelope rule, why) for everything about the pod outside the bundled envelope."""
    spec = pod["spec"]
    found = [("envelope: resources", r) for r in _resource_reasons(spec)]
    found += [("envelope: placement", r) for r in _placement_reasons(spec)]
    priority = spec.get("priorityClassName")
    if priority and not priority.startswith("airflow-"):
        found.append(("envelope: priorityClassNames", priority))
    for field in ("serviceAccountName", "serviceAccount"):
        account = spec.get(field) or ""
        if any(word in account for word in FORBIDDEN_ACCOUNT_WORDS) or (
                account and account != "default" and not account.endswith("airflow-worker")):
            found.append(("envelope: serviceAccountNames", field))
    if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
        found.append(("envelope: schedulerNames", spec["schedulerName"]))
    if spec.get("runtimeClassName"):
        found.append(("envelope: runtimeClassNames", spec["runtimeClassName"]))
    if (spec.get("securityContext") or {}).get("seccompProfile") != {"type": "RuntimeDefault"}:
        found.append(("envelope: lockedFields", "pod seccompProfile"))
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        profile = (c.get("securityContext") or {}).get("seccompProfile")
        if profile not in (None, {"type": "RuntimeDefault"}):
            found.append(("envelope: lockedFields", f"{c['name']} seccompProfile"))
        memory = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if memory is None or parse_quantity(memory) == 0:  # a limit of 0 is no limit
            found.append(("envelope: limits", f"{c['name']} memory"))
    return found


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PODS), fragment_strategy(direct=True))
def test_the_validating_hook_finds_a_violation_exactly_when_the_oracle_does(name, override):
    pod = merge_pod(airflow_pod(name), override)  # as Airflow builds it from pod_override
    pod["spec"]["tolerations"] = [*(pod["spec"].get("tolerations") or []),
                                  *DEFAULT_TOLERATIONS]
    mutation = mutate_pod(pod, BUNDLED, NS, SCHEDULER)
    assert mutation.allowed  # no annotations: the mutating hook refuses nothing here
    final = jsonpatch.apply_patch(pod, mutation.patch)
    result = validate_pod(final, BUNDLED, NS, SCHEDULER)
    expected = outside(final)
    assert envelope_rules(result) == {rule for rule, _ in expected}, (
        envelope_violations(result), expected)
