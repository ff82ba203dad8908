"""API Priority and Fairness for the pods Airflow's task accounts write (issue 21).

A task holds its worker's ServiceAccount token, and the worker may create pods (the
KubernetesPodOperator). kube-apiserver decodes, field-manages and encodes every pod body
before any admission webhook sees it: six 2.4 MiB pods in flight at once keep two cores busy
there, and every other team's pod create waits for a CPU. The webhook cannot prevent that
work (it only runs after it), so these objects bound it where it happens: pod writes by the
accounts that run DAG authors' code go to a priority level of their own with the fewest seats
kube-apiserver gives (nominalConcurrencyShares 1: 3 seats with the default 600 in flight),
no borrowing from idle levels, and queues, so a flood waits its turn (and legitimate KPO
creates queue rather than fail) while the scheduler's executor pods keep the default
`service-accounts` level.

Which accounts: per Settings `airflowReleases` entry, the official chart's `-worker` and
`-triggerer` (task and trigger code, KPO pods) and `-dag-processor` (DAG files' top-level
code), named as the webhook names them (policy/compile.py airflow_chart_fullname). Not the
`-scheduler` (its executor pods are what must keep flowing) nor the `-api-server`.

Pure: Settings documents (dicts) in, Kubernetes objects (dicts) out. deploy/sync.py writes the
kustomize component from the bundled Settings; the Helm chart computes the same objects from
its values (templates/flowcontrol.yaml, compared by tests/test_flowcontrol.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webhook.policy.compile import airflow_chart_fullname

API_VERSION = "flowcontrol.apiserver.k8s.io/v1"
DEFAULT_NAME = "airflow-pod-webhook"
NAME_SUFFIX = "-airflow-tasks"
TASK_ACCOUNT_SUFFIXES = ("-worker", "-triggerer", "-dag-processor")
# Before the defaults that would take these accounts (service-accounts 9000, global-default
# 9900); after exempt (1), probes (2) and the system schemas (100-900).
MATCHING_PRECEDENCE = 1000
NOMINAL_CONCURRENCY_SHARES = 1
QUEUING = {"queues": 16, "handSize": 4, "queueLengthLimit": 50}
VERBS = ("create", "update", "patch")
RESOURCES = ("pods", "pods/ephemeralcontainers")
LABELS = {"app.kubernetes.io/name": "airflow-pod-webhook",
          "app.kubernetes.io/component": "priority-and-fairness"}


def task_accounts(releases: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """FlowSchema ServiceAccount subjects ({namespace, name}) of the releases' task accounts,
    in release order, without duplicates."""
    out: list[dict[str, str]] = []
    for release in releases:
        fullname = airflow_chart_fullname(str(release.get("release", "")),
                                          release.get("fullnameOverride") or None)
        for suffix in TASK_ACCOUNT_SUFFIXES:
            subject = {"namespace": str(release.get("namespace", "")),
                       "name": f"{fullname}{suffix}"}
            if subject not in out:
                out.append(subject)
    return out


def settings_releases(documents: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """airflowReleases of the first Settings document (as the webhook loads its folder)."""
    for doc in documents:
        if isinstance(doc, Mapping) and doc.get("kind") == "Settings":
            identity = (doc.get("spec") or {}).get("identity") or {}
            return list(identity.get("airflowReleases") or [])
    return []


def flow_control_objects(releases: Iterable[Mapping[str, Any]], *, name: str = DEFAULT_NAME,
                         shares: int = NOMINAL_CONCURRENCY_SHARES,
                         queuing: Mapping[str, int] = QUEUING,
                         precedence: int = MATCHING_PRECEDENCE) -> list[dict]:
    """The PriorityLevelConfiguration and FlowSchema for the releases' task accounts; none
    when there is no release (a FlowSchema needs a subject)."""
    subjects = [{"kind": "ServiceAccount", "serviceAccount": account}
                for account in task_accounts(releases)]
    if not subjects:
        return []
    object_name = f"{name}{NAME_SUFFIX}"
    level = {
        "apiVersion": API_VERSION, "kind": "PriorityLevelConfiguration",
        "metadata": {"name": object_name, "labels": dict(LABELS)},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": shares,
            # Never more seats than nominal: borrowing would hand a flood the idle seats of
            # other levels, exactly when it should wait.
            "lendablePercent": 0,
            "borrowingLimitPercent": 0,
            "limitResponse": {"type": "Queue", "queuing": dict(queuing)}}}}
    schema = {
        "apiVersion": API_VERSION, "kind": "FlowSchema",
        "metadata": {"name": object_name, "labels": dict(LABELS)},
        "spec": {
            "matchingPrecedence": precedence,
            "priorityLevelConfiguration": {"name": object_name},
            # One flow per account: one release's flood queues behind its own requests, not
            # another release's.
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": subjects,
                "resourceRules": [{"verbs": list(VERBS), "apiGroups": [""],
                                   "resources": list(RESOURCES), "namespaces": ["*"]}]}]}}
    return [level, schema]
