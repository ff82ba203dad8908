"""Property: whatever override annotations a DAG author writes on a real Airflow pod, the
mutating hook either refuses them or returns a pod that keeps Airflow's labels and
annotations exactly and is still selected by the hooks' matchConditions; it never crashes
and never answers with NaN or Infinity."""

from __future__ import annotations

import base64
import json
import math

import jsonpatch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.admission_reviews import pod_review
from tests.support.pods import airflow_pod
from tests.support.policies import bundled_policies, policy_set
from webhook.airflow_pods import AIRFLOW_ANNOTATIONS, AIRFLOW_LABELS
from webhook.cluster.registration import selected_by_hooks
from webhook.review import MUTATE, answer

P = "airflow-pod-webhook.io/"
PODS = ["airflow2-executor", "airflow2-executor-pod-override", "airflow3-executor",
        "airflow3-executor-pod-override", "airflow3-kpo", "airflow3-kpo-xcom"]
BUNDLED = bundled_policies()
# Everything a pod_override can name is allowed: only the identity guards stand in the way.
WIDE_OPEN = policy_set("""
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: OverridePolicy
    metadata: {name: open}
    spec:
      allowedFields: [metadata, spec]
    ---
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Profile
    metadata: {name: relabel}
    spec:
      description: a profile that relabels (Airflow's keys are refused when it is loaded)
      template: {metadata: {labels: {team: x}, annotations: {note: y}}}
""")
CREATORS = [None, "system:serviceaccount:airflow:airflow-scheduler",
            "system:serviceaccount:airflow:airflow-worker", "alice"]

AIRFLOW_KEYS = sorted(AIRFLOW_LABELS | AIRFLOW_ANNOTATIONS)
keys = st.sampled_from([*AIRFLOW_KEYS, "team", "example.com/x", "kubernetes.io/config.mirror",
                        "node-pool", "cpu", "memory", "base"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["True", "False", "", "1", "NaN", ".inf", "4Gi", "3"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)), max_leaves=8)
meta_maps = st.one_of(st.none(), st.just({}), st.sampled_from(["x", 1, []]),
                      st.dictionaries(keys, st.one_of(st.none(), st.sampled_from(
                          ["True", "False", "3", "other", "x"]), values), max_size=4))
fragments = st.fixed_dictionaries({}, optional={
    "metadata": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "labels": meta_maps, "annotations": meta_maps, "name": st.just("x")})),
    "spec": st.one_of(st.none(), st.dictionaries(
        st.sampled_from(["containers", "priorityClassName", "nodeSelector", "volumes",
                         "activeDeadlineSeconds", "hostPID"]), values, max_size=3),
        st.fixed_dictionaries({"containers": st.lists(st.fixed_dictionaries(
            {"name": st.sampled_from(["base", "*"])},
            optional={"resources": st.fixed_dictionaries({"limits": st.dictionaries(
                st.sampled_from(["cpu", "memory"]), scalars, max_size=2)})}), max_size=2)})),
})


def _text(fragment: dict, as_yaml: bool) -> str:
    if as_yaml:
        return yaml.safe_dump(fragment)
    return json.dumps(fragment)  # Python writes NaN/Infinity, as a careless DAG might


annotations = st.fixed_dictionaries({}, optional={
    P + "pod-override": st.builds(_text, fragments, st.booleans()),
    P + "profiles": st.sampled_from(["relabel", "spot", "gpu,relabel", "nope"]),
    P + "cpu": st.sampled_from(["1", "NaN", "Infinity", "-1", "1e400", "0.1n", "x"]),
    P + "memory": st.sampled_from(["4Gi", "NaN", "1e3", ""]),
})


def _final_pod(pod: dict, body: dict) -> dict | None:
    response = body["response"]
    if not response["allowed"]:
        return None
    if not response.get("patch"):
        return pod
    text = base64.b64decode(response["patch"]).decode()
    patch = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(c)))
    return jsonpatch.apply_patch(pod, patch)


def _no_nan(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_no_nan(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_nan(v) for v in value)
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(PODS), asked=annotations, creator=st.sampled_from(CREATORS),
       wide_open=st.booleans())
def test_overrides_are_refused_or_keep_what_identifies_the_pod(name, asked, creator,
                                                                wide_open) -> None:
    pod = airflow_pod(name)
    pod["metadata"].setdefault("annotations", {}).update(asked)
    review = pod_review(pod, username=creator) if creator else pod_review(pod)
    if creator is None:
        review["request"]["userInfo"] = {}
    status, body, _ = answer(MUTATE, review, WIDE_OPEN if wide_open else BUNDLED)
    assert status == 200
    json.dumps(body, allow_nan=False)  # never NaN or Infinity in an answer
    final = _final_pod(pod, body)
    if final is None:
        assert body["response"]["status"]["message"]  # refused, with a reason
        return
    assert _no_nan(final)
    for field, owned in (("labels", AIRFLOW_LABELS), ("annotations", AIRFLOW_ANNOTATIONS)):
        before = {k: v for k, v in pod["metadata"].get(field, {}).items() if k in owned}
        after = final["metadata"].get(field)
        assert isinstance(after, dict) or not before
        assert {k: v for k, v in (after or {}).items() if k in owned} == before
    assert selected_by_hooks(final)
