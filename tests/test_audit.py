"""The adoption audit: pods from files, stripping what the API server added, the judgement of
each pod, the three output formats and the exit codes. The cluster source runs against a real
API server in tests/e2e/test_audit_cluster.py."""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml

from tests.support.admission_reviews import pod_review
from tests.support.paths import AIRFLOW_PODS, ROOT
from tests.support.pods import airflow_pod
from tests.support.policies import policy_set
from tests.support.stored_pods import EXPLAIN, as_stored, foreign
from webhook import cli
from webhook.audit import report
from webhook.audit.command import AuditOptions, run
from webhook.audit.files import SourceError, pods_from_text
from webhook.audit.judge import PodAudit, audit_pod
from webhook.audit.progress import Progress
from webhook.audit.strip import submitted_pod
from webhook.review import MUTATE_AND_VALIDATE, answer

FIXTURES = sorted(p.stem for p in AIRFLOW_PODS.glob("*.json"))
CRD = ROOT / "tests" / "fixtures" / "crds" / "policyreports.wgpolicyk8s.io.yaml"
NOW = 1_800_000_000.25

POLICIES = """
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: PodTemplate
metadata: {name: seccomp}
spec:
  match: {podTypes: [executor, kpo]}
  template:
    spec:
      securityContext:
        seccompProfile: {type: RuntimeDefault}
---
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: ValidationPolicy
metadata: {name: baseline}
spec:
  mode: enforce
  podSecurity: {level: baseline, version: latest}
---
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: ValidationPolicy
metadata: {name: hygiene}
spec:
  mode: warn
  rules:
    images: {forbidLatestTag: true}
---
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: Exemption
metadata: {name: legacy-nfs}
spec:
  reason: NFS share until the CSI driver lands
  match: {dagIds: [nfs_export]}
  rules: ["baseline: hostPathVolumes"]
"""


@pytest.fixture(scope="module")
def policies():
    return policy_set(POLICIES)


def executor(name: str, dag_id: str = "example_dag", **container: object) -> dict:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["name"] = name
    pod["spec"]["containers"][0].update(container)
    pod["metadata"]["annotations"]["dag_id"] = dag_id
    pod["metadata"]["labels"]["dag_id"] = dag_id
    return pod


def privileged(name: str = "priv") -> dict:
    return executor(name, securityContext={"privileged": True})


def test_a_stored_pod_strips_back_to_what_was_submitted() -> None:
    pod = airflow_pod("airflow3-executor")
    assert submitted_pod(as_stored(pod), EXPLAIN) == submitted_pod(pod, EXPLAIN)
    stripped = submitted_pod(as_stored(pod), EXPLAIN)
    assert "status" not in stripped and "nodeName" not in stripped["spec"]
    assert EXPLAIN not in stripped["metadata"]["annotations"]
    assert [v["name"] for v in stripped["spec"]["volumes"]] == ["logs", "config"]
    assert "tolerations" not in stripped["spec"]
    assert stripped["metadata"]["name"] == pod["metadata"]["name"]


@pytest.mark.parametrize("name", FIXTURES)
def test_a_stored_pod_is_judged_like_the_submitted_one(name: str, bundled) -> None:
    pod = airflow_pod(name)
    stored, submitted = audit_pod(as_stored(pod), bundled), audit_pod(pod, bundled)
    assert stored.uid and not submitted.uid
    assert stored == PodAudit(**{**submitted.__dict__, "uid": stored.uid})


def test_only_what_the_api_server_adds_is_stripped() -> None:
    pod = airflow_pod("airflow3-executor")
    spec = pod["spec"]
    spec.update(dnsPolicy="Default", enableServiceLinks=False, terminationGracePeriodSeconds=5,
                tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                              "effect": "NoExecute", "tolerationSeconds": 600}])
    # Named like the token volume but not the ServiceAccount plugin's: the creator's own.
    spec["volumes"].append({"name": "kube-api-access-abcde", "emptyDir": {}})
    spec["containers"][0].update(terminationMessagePath="/tmp/done", imagePullPolicy="Always")
    pod["metadata"]["annotations"]["airflow-pod-webhook.io/cpu"] = "2"
    stripped = submitted_pod(pod, EXPLAIN)
    for key in ("dnsPolicy", "enableServiceLinks", "terminationGracePeriodSeconds",
                "tolerations", "volumes"):
        assert stripped["spec"][key] == spec[key], key
    assert stripped["spec"]["containers"][0]["terminationMessagePath"] == "/tmp/done"
    assert stripped["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert stripped["metadata"]["annotations"]["airflow-pod-webhook.io/cpu"] == "2"
    assert pod == airflow_pod("airflow3-executor") | {"spec": spec, "metadata": pod["metadata"]}


def test_pull_policy_is_stripped_only_when_it_is_the_default_for_the_image() -> None:
    pod = foreign()
    pod["spec"]["containers"] = [
        {"name": "a", "image": "nginx", "imagePullPolicy": "Always"},
        {"name": "b", "image": "nginx:latest", "imagePullPolicy": "IfNotPresent"},
        {"name": "c", "image": "reg:5000/nginx@sha256:ab", "imagePullPolicy": "IfNotPresent"},
        {"name": "d", "image": "reg:5000/nginx:1.2", "imagePullPolicy": "Never"}]
    assert [c.get("imagePullPolicy") for c in submitted_pod(pod)["spec"]["containers"]] == [
        None, "IfNotPresent", None, "Never"]


# ---------------------------------------------------------------------------------------------
# The judgement agrees with the webhook itself


@pytest.mark.parametrize("name", FIXTURES)
def test_the_decision_and_patch_are_those_of_the_webhooks_single_call(name: str,
                                                                      bundled) -> None:
    """The webhook's own answer for the pod the audit judges (the stripped one)."""
    for pod in (airflow_pod(name), privileged()):
        review = pod_review(submitted_pod(pod, EXPLAIN))
        _, body, decision = answer(MUTATE_AND_VALIDATE, review, bundled)
        audit = audit_pod(pod, bundled)
        assert audit.decision == decision.decision
        assert body["response"]["allowed"] is (audit.decision != "deny")
        assert sorted(audit.rules) == sorted(decision.rules)
        if audit.decision == "allow":
            patch = json.loads(base64.b64decode(body["response"]["patch"]))
            # Less the webhook's explain annotation, which the audit leaves out of the changes.
            assert [c["path"] for c in audit.changes] == [
                op["path"] for op in patch if not is_explain(op)]


def is_explain(op: dict) -> bool:
    return (op["path"] == "/metadata/annotations/airflow-pod-webhook.io~1applied"
            or (op["path"] == "/metadata/annotations" and list(op["value"]) == [EXPLAIN]))


def test_refused_override_annotations_deny(policies) -> None:
    pod = executor("asks")
    pod["metadata"]["annotations"]["airflow-pod-webhook.io/cpu"] = "2"
    audit = audit_pod(pod, policies)
    assert audit.decision == "deny"
    assert audit.changes == ()  # a refused pod is not mutated
    assert audit.refusals == ({
        "annotation": "airflow-pod-webhook.io/cpu", "field": "", "rule": "OverridePolicy",
        "message": "annotation airflow-pod-webhook.io/cpu: no OverridePolicy allows DAG-author "
                   "overrides in namespace 'data-airflow' (OverridePolicy)"},)


def test_exemptions_waive_and_are_reported(policies) -> None:
    pod = executor("nfs", dag_id="nfs_export")
    pod["spec"]["volumes"].append({"name": "share", "hostPath": {"path": "/mnt/share"}})
    audit = audit_pod(pod, policies)
    assert audit.decision == "allow"
    assert audit.violations == ()
    assert [(w.rule, w.path, w.exemption, w.policy) for w in audit.exempted] == [
        ("baseline: hostPathVolumes", "spec.volumes[share].hostPath", "legacy-nfs",
         "baseline")]


# ---------------------------------------------------------------------------------------------
# Output formats


def run_audit(policies, pods: list[dict], output: str, **options: object) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    path = options.pop("path")
    Path(path).write_text(yaml.safe_dump_all(pods))
    code = run(policies, AuditOptions(files=(str(path),), output=output, **options), out, err,
               now=NOW)
    return code, out.getvalue()


@pytest.fixture
def three(tmp_path: Path) -> tuple[list[dict], Path]:
    return [executor("ok", image="apache/airflow:3.3.2"), privileged(),
            foreign()], tmp_path / "pods.yaml"


def test_table_output(policies, three) -> None:
    pods, path = three
    code, text = run_audit(policies, pods, "table", path=path)
    assert code == 1
    assert text == (
        "NAMESPACE         POD                                   DAG_ID                "
        "TASK_ID           DECISION  IF ENFORCED  CHANGES  RULES\n"
        "data-airflow      ok                                    example_dag           "
        "extract           allow     allow        1        -\n"
        "data-airflow      priv                                  example_dag           "
        "extract           deny      would deny   1        baseline: privileged (enforce)\n"
        "data-airflow      web                                   -                     "
        "-                 skip      -            0        -\n"
        "\n"
        "3 pods: 1 allow, 1 deny, 1 skip (not Airflow's, no policy selects them); "
        "2 would be changed; 1 would be denied if every policy enforced\n"
        "\n"
        "BY RULE                                         ENFORCE  WARN  AUDIT  REFUSED  EXEMPTED\n"
        "baseline: privileged                                  1     0      0        0         0\n"
        "\n"
        "BY DAG                                    PODS  ALLOW  DENY  WOULD DENY  CHANGED\n"
        "example_dag                                  2      1     1           1        2\n")


def test_json_output(policies, three) -> None:
    pods, path = three
    code, text = run_audit(policies, pods, "json", path=path)
    assert code == 1
    data = json.loads(text)
    assert data["summary"] == {
        "pods": 3, "allow": 1, "deny": 1, "skip": 1, "would_deny": 1, "changed": 2,
        "by_rule": {"baseline: privileged": {"enforce": 1}},
        "by_dag": {"example_dag": {"pods": 2, "allow": 1, "deny": 1, "would_deny": 1,
                                   "changed": 2}}}
    assert data["pods"][1] == {
        "namespace": "data-airflow", "name": "priv", "pod_type": "executor",
        "dag_id": "example_dag", "task_id": "extract", "decision": "deny", "would_deny": True,
        "violations": [{
            "rule": "baseline: privileged",
            "path": "spec.containers[base].securityContext.privileged",
            "message": "spec.containers[base].securityContext.privileged must be unset or "
                       "false, got true (baseline: privileged)",
            "mode": "enforce"}],
        "changes": [{"op": "add", "path": "/spec/securityContext/seccompProfile",
                     "policies": ["PodTemplate/seccomp"]}],
        "refusals": [], "exempted": []}
    assert [p["decision"] for p in data["pods"]] == ["allow", "deny", "skip"]
    assert set(data) == {"summary", "pods"}


def test_a_warn_rule_is_reported_in_its_mode_and_as_what_enforcing_would_deny(
        policies, tmp_path: Path) -> None:
    code, text = run_audit(policies, [executor("latest", image="apache/airflow:latest")],
                           "json", path=tmp_path / "p.yaml")
    assert code == 1  # the hooks let it start, but enforcing the policy would deny it
    pod = json.loads(text)["pods"][0]
    assert (pod["decision"], pod["would_deny"]) == ("allow", True)
    assert [(v["rule"], v["mode"]) for v in pod["violations"]] == [("airflow: images", "warn")]


def crd_schema() -> dict:
    crd = yaml.safe_load(CRD.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_policyreport_output(policies, three) -> None:
    pods, path = three
    code, text = run_audit(policies, pods, "policyreport", path=path)
    assert code == 1
    reports = list(yaml.safe_load_all(text))
    assert len(reports) == 1
    stamp = {"seconds": 1_800_000_000, "nanos": 250_000_000}
    common = {"source": "airflow-pod-webhook", "timestamp": stamp}

    def ref(name: str) -> list[dict]:
        return [{"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": "data-airflow"}]

    props = {"pod_type": "executor", "changes": "1", "dag_id": "example_dag",
             "task_id": "extract"}
    assert reports[0] == {
        "apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": "airflow-pod-webhook-audit", "namespace": "data-airflow",
                     "labels": {"app.kubernetes.io/managed-by": "airflow-pod-webhook"}},
        "results": [
            {"policy": "baseline", "rule": "*", "result": "pass",
             "message": "no rule of this policy is violated", "scored": True, **common,
             "resources": ref("ok"),
             "properties": {**props, "decision": "allow", "ifEnforced": "allow"}},
            {"policy": "hygiene", "rule": "*", "result": "pass",
             "message": "no rule of this policy is violated", "scored": True, **common,
             "resources": ref("ok"),
             "properties": {**props, "decision": "allow", "ifEnforced": "allow"}},
            {"policy": "baseline", "rule": "baseline: privileged", "result": "fail",
             "message": "spec.containers[base].securityContext.privileged must be unset or "
                        "false, got true (baseline: privileged)",
             "scored": True, **common, "resources": ref("priv"),
             "properties": {**props, "decision": "deny", "ifEnforced": "deny", "mode": "enforce",
                            "path": "spec.containers[base].securityContext.privileged"}},
            {"policy": "hygiene", "rule": "*", "result": "pass",
             "message": "no rule of this policy is violated", "scored": True, **common,
             "resources": ref("priv"),
             "properties": {**props, "decision": "deny", "ifEnforced": "deny"}},
        ],
        "summary": {"pass": 3, "fail": 1, "warn": 0, "error": 0, "skip": 0}}
    jsonschema.validate(reports[0], crd_schema())


def test_policyreport_results_for_warnings_refusals_and_exemptions(policies,
                                                                    tmp_path: Path) -> None:
    nfs = executor("nfs", dag_id="nfs_export", image="apache/airflow:latest")
    nfs["spec"]["volumes"].append({"name": "share", "hostPath": {"path": "/mnt/share"}})
    asks = executor("asks")
    asks["metadata"]["annotations"]["airflow-pod-webhook.io/cpu"] = "2"
    code, text = run_audit(policies, [nfs, asks], "policyreport", path=tmp_path / "p.yaml")
    assert code == 1
    report_ = yaml.safe_load(text)
    got = [(r["resources"][0]["name"], r["policy"], r["rule"], r["result"], r["scored"])
           for r in report_["results"]]
    assert got == [
        # A warn-mode violation fails as it would if enforced; the pod still starts today.
        ("nfs", "hygiene", "airflow: images", "fail", True),
        ("nfs", "baseline", "baseline: hostPathVolumes", "skip", False),
        # A refused override ends the decision, as in the hooks: nothing else is judged.
        ("asks", "overrides", "OverridePolicy", "fail", True)]
    assert report_["results"][1]["message"].startswith("exempted by legacy-nfs: ")
    assert report_["summary"] == {"pass": 0, "fail": 2, "warn": 0, "error": 0, "skip": 1}
    jsonschema.validate(report_, crd_schema())


def test_one_report_per_namespace(policies, tmp_path: Path) -> None:
    other = privileged("other")
    other["metadata"]["namespace"] = "team-b"
    _, text = run_audit(policies, [privileged(), other], "policyreport",
                        path=tmp_path / "p.yaml")
    assert [(r["metadata"]["namespace"], r["summary"]["fail"])
            for r in yaml.safe_load_all(text)] == [("data-airflow", 1), ("team-b", 1)]


def test_timestamp_splits_seconds_and_nanos() -> None:
    assert report.timestamp(12.5) == {"seconds": 12, "nanos": 500_000_000}
    assert report.timestamp(12.0) == {"seconds": 12, "nanos": 0}


# ---------------------------------------------------------------------------------------------
# File sources


def kubectl_list(*pods: dict) -> str:
    """What `kubectl get pods -o yaml` prints: a v1 List."""
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "metadata": {
        "resourceVersion": ""}, "items": list(pods)})


def names(text: str, notes: io.StringIO | None = None) -> list[str]:
    return [p["metadata"]["name"] for p in pods_from_text(text, "f.yaml", notes)]


def test_file_shapes() -> None:
    a, b, c = executor("a"), executor("b"), foreign("c")
    assert names(json.dumps(a)) == ["a"]
    assert names(yaml.safe_dump(a)) == ["a"]
    assert names(kubectl_list(a, b)) == ["a", "b"]
    assert names(json.dumps({"kind": "PodList", "apiVersion": "v1", "items": [a]})) == ["a"]
    assert names(yaml.safe_dump_all([a, None, kubectl_list(b, c) and yaml.safe_load(
        kubectl_list(b, c))])) == ["a", "b", "c"]


def test_other_kinds_are_passed_over_with_a_note() -> None:
    notes = io.StringIO()
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    assert names(yaml.safe_dump_all([deployment, executor("a")]), notes) == ["a"]
    assert notes.getvalue() == ("note: f.yaml (document 1): Deployment is not a Pod, "
                                "passed over\n")


@pytest.mark.parametrize(("text", "message"), [
    ("a: [", "f.yaml is neither JSON nor YAML at line 2, column 1: "),
    ("- 1\n- 2\n", "f.yaml: expected a Pod or a List of pods, got a list"),
    ("metadata: {name: x}\n", "f.yaml: no kind: expected a Pod or a List of pods"),
    ("kind: List\nitems: 3\n", "f.yaml: List without an items list"),
    ("kind: Pod\nmetadata: {name: x}\n", "f.yaml: a Pod needs metadata and spec maps"),
    ("kind: List\nitems: [{kind: Pod}]\n", "f.yaml items[0]: a Pod needs metadata and spec maps"),
])
def test_bad_files_say_where(text: str, message: str) -> None:
    with pytest.raises(SourceError) as raised:
        list(pods_from_text(text, "f.yaml"))
    assert str(raised.value).startswith(message)


def test_the_fixture_files_audit_from_a_kubectl_list(bundled, tmp_path: Path) -> None:
    path = tmp_path / "pods.yaml"
    path.write_text(kubectl_list(*(as_stored(airflow_pod(n)) for n in FIXTURES)))
    out, err = io.StringIO(), io.StringIO()
    want = [(a.name, a.decision, a.would_deny, len(a.changes)) for a in (
        audit_pod(airflow_pod(n), bundled) for n in FIXTURES)]
    code = run(bundled, AuditOptions(files=(str(path),), output="json"), out, err)
    assert code == (1 if any(w[2] for w in want) else 0)
    got = [(p["name"], p["decision"], p["would_deny"], len(p["changes"])) for p in json.loads(
        out.getvalue())["pods"]]
    assert got == want


# ---------------------------------------------------------------------------------------------
# Exit codes, through the command line


def cli_run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_policies(tmp_path: Path) -> str:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "p.yaml").write_text(POLICIES)
    return str(folder)


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = write_policies(tmp_path)
    ok, bad = tmp_path / "ok.yaml", tmp_path / "bad.yaml"
    ok.write_text(yaml.safe_dump_all([executor("ok"), foreign()]))
    bad.write_text(yaml.safe_dump_all([executor("ok"), privileged()]))
    assert cli_run(["audit", "--policies", folder, str(ok)], capsys)[0] == 0
    assert cli_run(["audit", "--policies", folder, str(bad)], capsys)[0] == 1
    for argv, message in [
        ([str(tmp_path / "missing.yaml")], "error: cannot read "),
        ([str(ok), "-l", "a=b"], "error: -l and -A select pods in a cluster"),
        (["-n", "a", "-A"], "error: -n and -A exclude each other"),
        ([str(ok), "--write-reports"], "error: --write-reports writes into the cluster"),
        (["--kubeconfig", str(tmp_path / "none")], "error: kubeconfig"),
        (["--chunk-size", "0"], "error: --chunk-size must be at least 1"),
    ]:
        code, out, err = cli_run(["audit", "--policies", folder, *argv], capsys)
        assert (code, out) == (2, ""), argv
        assert err.startswith(message) and len(err.splitlines()) == 1, err


def test_a_broken_kubeconfig_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = write_policies(tmp_path)
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\nclusters: [}\n")
    code, out, err = cli_run(["audit", "--policies", folder, "--kubeconfig", str(config)],
                             capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: kubeconfig {config}: ") and len(err.splitlines()) == 1


def test_without_the_kubernetes_package_a_cluster_audit_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # import kubernetes raises
    code, out, err = cli_run(["audit", "--policies", write_policies(tmp_path)], capsys)
    assert (code, out) == (2, "")
    assert err == ("error: the audit of a live cluster needs the `kubernetes` package: "
                   "pip install kubernetes (or audit pod files instead)\n")


def test_files_never_import_the_kubernetes_client(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    pods = tmp_path / "pods.json"
    pods.write_text(json.dumps(executor("ok")))
    assert cli_run(["audit", "--policies", write_policies(tmp_path), str(pods)], capsys)[0] == 0


# ---------------------------------------------------------------------------------------------
# Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_shows_a_bar_after_two_seconds_on_a_terminal() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, enabled=True, clock=clock)
    progress.update(100, 1000)
    assert stream.getvalue() == ""  # quick runs stay quiet
    clock.now = 2.5
    progress.update(500, 1000)
    assert stream.getvalue() == "\r\033[K[###############---------------] 500/1000 pods, 200 pods/s"
    clock.now = 2.55
    progress.update(600, None)  # throttled: at most ten updates a second
    clock.now = 3.0
    progress.update(900, None)
    assert stream.getvalue().endswith("\r\033[K900 pods judged, 300 pods/s")
    progress.finish()
    assert stream.getvalue().endswith("\r\033[K")


def test_progress_is_silent_when_stderr_is_not_a_terminal() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, clock=clock)  # StringIO is not a TTY
    clock.now = 10
    progress.update(5000, 10000)
    progress.finish()
    assert stream.getvalue() == ""


# ---------------------------------------------------------------------------------------------
# The cluster source's paging, against a stand-in for the client's CoreV1Api (the real API
# server pages in tests/e2e/test_audit_cluster.py)


class Response:
    def __init__(self, body: dict) -> None:
        self.data = json.dumps(body).encode()


class PagedCore:
    """list_pod_for_all_namespaces as kube-apiserver answers it: `limit` items a page, a
    continue token while more remain, and once a 410 Gone for an expired token."""

    def __init__(self, pods: list[dict], expire_once: str | None = None) -> None:
        self.pods, self.expire_once, self.calls = pods, expire_once, []

    def __call__(self, api: object) -> PagedCore:
        return self

    def list_pod_for_all_namespaces(self, **kwargs: object) -> Response:
        from kubernetes.client.exceptions import ApiException  # the client's own error type

        self.calls.append(kwargs)
        token = kwargs.get("_continue")
        if token is not None and token == self.expire_once:
            self.expire_once = None
            error = ApiException(status=410, reason="Gone")
            error.body = json.dumps({"kind": "Status", "code": 410, "metadata": {
                "continue": f"fresh-{token}"}})
            raise error
        start = int(str(token).rsplit("-", 1)[-1]) if token else 0
        limit = int(kwargs["limit"])  # type: ignore[arg-type]
        items = self.pods[start:start + limit]
        rest = len(self.pods) - start - len(items)
        meta = {"continue": f"page-{start + limit}", "remainingItemCount": rest} if rest else {}
        return Response({"kind": "PodList", "items": items, "metadata": meta})


def test_pods_are_listed_a_page_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    client = pytest.importorskip("kubernetes.client")

    from webhook.audit.cluster import ClusterOptions, list_pages

    pods = [executor(f"p{i}") for i in range(5)]
    core = PagedCore(pods, expire_once="page-4")
    monkeypatch.setattr(client, "CoreV1Api", core)
    pages = list(list_pages(object(), ClusterOptions(page_size=2, selector="a=b")))
    assert [[p["metadata"]["name"] for p in page.pods] for page in pages] == [
        ["p0", "p1"], ["p2", "p3"], ["p4"]]
    assert [page.remaining for page in pages] == [3, 1, None]
    # The expired token is followed by the one the 410 handed out, not by a restart.
    assert [c.get("_continue") for c in core.calls] == [None, "page-2", "page-4",
                                                        "fresh-page-4"]
    assert all(c["limit"] == 2 and c["label_selector"] == "a=b"
               and c["_preload_content"] is False for c in core.calls)


def test_a_report_too_big_for_etcd_keeps_failures_and_says_what_it_left_out(policies) -> None:
    results = report.NamespaceResults("big", budget=3_000)
    for i in range(12):
        pod = privileged(f"p{i}") if i % 3 == 0 else executor(f"p{i}")
        pod["metadata"]["namespace"] = "big"
        results.add(report.report_results(audit_pod(pod, policies), NOW))
    built = results.report(NOW)
    kept = [(r["resources"][0]["name"], r["result"]) for r in built["results"][:-1]]
    # All four failures fit first; passes fill what is left, in the order pods were judged.
    assert [k for k in kept if k[1] == "fail"] == [
        ("p0", "fail"), ("p3", "fail"), ("p6", "fail"), ("p9", "fail")]
    assert sum(len(orjson.dumps(r)) for r in built["results"][:-1]) <= 3_000
    # 24 results in all: 4 fail and 4 pass (hygiene) on the denied pods, 16 pass on the rest.
    left = 24 - len(kept)
    assert left > 0
    error = built["results"][-1]
    assert (error["result"], error["rule"]) == ("error", "report-size")
    assert error["message"] == (
        f"{left} results left out ({left} pass): the report would pass the size limit of a "
        "Kubernetes object; run `airflow-pod-webhook audit -n big` for all of them")
    assert built["summary"]["error"] == 1 and built["summary"]["fail"] == 4
    jsonschema.validate(built, crd_schema())


def test_pods_without_a_namespace_get_a_report_without_one(policies, tmp_path: Path) -> None:
    pod = privileged()
    del pod["metadata"]["namespace"]
    _, text = run_audit(policies, [pod], "policyreport", path=tmp_path / "p.yaml")
    built = yaml.safe_load(text)
    assert "namespace" not in built["metadata"]
    assert built["results"][0]["resources"] == [{"apiVersion": "v1", "kind": "Pod",
                                                 "name": "priv"}]


@pytest.mark.parametrize("spec", [
    {"containers": "x"},
    {"containers": [None, 3, {"name": "a", "image": 5, "ports": ["x"], "livenessProbe": 1}]},
    {"volumes": ["x", {"name": "kube-api-access-abcde", "projected": []}],
     "containers": [{"name": "a", "image": "a:1", "volumeMounts": "x"}]},
    {"volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": [
        {"serviceAccountToken": {}}, {"configMap": None}, {"downwardAPI": {}}]}}],
     "containers": [{"name": "a", "image": "a:1"}]},
    {"tolerations": [None, "x", {"key": 1}], "securityContext": [],
     "containers": [{"name": "a", "image": "a:1"}]},
])
def test_odd_pods_are_judged_without_crashing(policies, spec: dict) -> None:
    pod = executor("odd")
    pod["spec"] = spec
    audit = audit_pod(pod, policies)
    assert audit.decision in ("allow", "deny")
    assert audit.name == "odd"


def test_namespace_flag_fills_in_pods_from_files_that_name_none(policies,
                                                              tmp_path: Path) -> None:
    nameless, named = privileged("a"), privileged("b")
    del nameless["metadata"]["namespace"]
    _, text = run_audit(policies, [nameless, named], "json", path=tmp_path / "p.yaml",
                        namespace="team-a")
    assert [(p["namespace"], p["name"]) for p in json.loads(text)["pods"]] == [
        ("team-a", "a"), ("data-airflow", "b")]


def test_a_long_file_run_on_a_terminal_draws_the_bar(policies, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr("webhook.audit.progress.monotonic", clock)
    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"kind": "List", "items": [executor(f"p{i}")
                                                          for i in range(1200)]}))
    real_audit = audit_pod

    def slow_audit(pod: dict, policies_: object, **options: object) -> PodAudit:
        clock.now += 0.005  # 1,200 pods at 200/s: six seconds
        return real_audit(pod, policies_, **options)

    monkeypatch.setattr("webhook.audit.command.audit_pod", slow_audit)
    out, err = io.StringIO(), io.StringIO()
    run(policies, AuditOptions(files=(str(path),), output="json", progress=True), out, err)
    bars = err.getvalue().split("\r\033[K")
    # Updated once a page (500 pods, 2.5 s in: past the two-second threshold), then cleared.
    assert bars[1:] == ["[############------------------] 500/1200 pods, 200 pods/s",
                        "[#########################-----] 1000/1200 pods, 200 pods/s",
                        "[##############################] 1200/1200 pods, 200 pods/s", ""]


# ---------------------------------------------------------------------------------------------
# The audit and the hooks give one verdict: every fixture pod and every attack pod of the
# suites, through both hooks (mutate, apply the patch, validate) and through `audit`.


def _walked_pods() -> list[tuple[str, dict, str | None]]:
    """(id, pod, creator) for every pod the suites know an answer for."""
    from tests.e2e import envelope_attacks as envelope
    from tests.e2e import security_scenarios as security
    from tests.e2e.scenarios import SCENARIOS, build_pod, creator_of, scheduler_username

    ns = "airflow-e2e-audit"
    pods = [(f"fixture:{n}", {**airflow_pod(n), "metadata": {
        **airflow_pod(n)["metadata"], "namespace": ns}}, scheduler_username(ns))
        for n in FIXTURES]
    pods += [(f"scenario:{s.name}", build_pod(s, ns), creator_of(s, ns))
             for s in SCENARIOS if not s.in_kube_system]
    for attack in security.ATTACKS:
        where = security.namespace_for(attack, ns)
        pods.append((f"security:{attack.name}", security.attack_pod(attack, where),
                     security.username(attack, where)))
    pods += [(f"envelope:{a.name}", envelope.attack_pod(a, ns), scheduler_username(ns))
             for a in envelope.ATTACKS]
    return pods


WALKED = _walked_pods()
# Who created a pod is not recorded on it (README, "Adopt it"): this attack is denied only
# because a worker's account, which gets no Exemption, created it; the audit, judging it as
# if the scheduler had, shows the Exemption that waives it.
BY_CREATOR_ONLY = {"security:worker-forges-exempted-executor-pod"}


@pytest.fixture(scope="module")
def e2e_policy_set(tmp_path_factory: pytest.TempPathFactory):
    from tests.e2e.scenarios import e2e_policies
    from webhook.policy.load import load_policy_dir

    result = load_policy_dir(e2e_policies(tmp_path_factory.mktemp("audit") / "policies"))
    assert result.policy_set is not None, result.errors
    return result.policy_set


@pytest.mark.parametrize(("name", "pod", "creator"), WALKED, ids=[w[0] for w in WALKED])
def test_audit_gives_the_hooks_verdict(name: str, pod: dict, creator: str | None,
                                       e2e_policy_set) -> None:
    from tests.e2e.offline_core import admit_offline

    namespace = pod["metadata"]["namespace"]
    outcome, result = admit_offline(pod, namespace, creator, e2e_policy_set)
    audit = audit_pod(pod, e2e_policy_set)
    denied = outcome == "denied"
    if name in BY_CREATOR_ONLY:
        assert denied and "baseline: hostPathVolumes" in str(result), result
        assert (audit.decision, {w.exemption for w in audit.exempted}) == (
            "allow", {"legacy-nfs-export"})
        return
    assert (audit.decision == "deny") is denied, (audit, result)
    if denied:
        # Named the same way: every rule the audit denies it for is in the hooks' text.
        rules = {r["rule"] for r in audit.refusals} | {
            f.rule for f in audit.violations if f.mode == "enforce"}
        assert rules and all(rule in str(result) for rule in rules), (rules, result)


def test_the_walk_covers_every_list() -> None:
    from tests.e2e import envelope_attacks as envelope
    from tests.e2e import security_scenarios as security

    kinds = [w[0].split(":")[0] for w in WALKED]
    assert kinds.count("fixture") == len(FIXTURES) == 6
    assert kinds.count("security") == len(security.ATTACKS)
    assert kinds.count("envelope") == len(envelope.ATTACKS)


def test_the_adoption_paths_audit_step_flags_a_privileged_pod(tmp_path: Path) -> None:
    # README "Adopt it", step 1: every ValidationPolicy and Envelope in `mode: audit`. The hooks
    # let everything start; the audit must still say what enforcing would deny, and fail the Job.
    import shutil

    from webhook.policy.load import load_policy_dir

    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", folder)
    for path in folder.glob("*.yaml"):
        path.write_text(path.read_text().replace("mode: enforce", "mode: audit")
                        .replace("mode: warn", "mode: audit"))
    policies = load_policy_dir(folder).policy_set
    assert policies is not None
    code, text = run_audit(policies, [executor("priv", securityContext={"privileged": True})],
                           "json", path=tmp_path / "pods.yaml")
    assert code == 1
    pod = json.loads(text)["pods"][0]
    assert (pod["decision"], pod["would_deny"]) == ("allow", True)
    assert {"rule": "baseline: privileged", "mode": "audit",
            "path": "spec.containers[base].securityContext.privileged",
            "message": "spec.containers[base].securityContext.privileged must be unset or "
                       "false, got true (baseline: privileged)"} in pod["violations"]
