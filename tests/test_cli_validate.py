"""The offline `validate` and the validating hook run the same core: same pod in, same answer
out (a create, a pod after the mutating hook, an update); `--level` judges one Pod Security
level as the cluster's own admission would."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.support.admission_reviews import pod_review
from tests.support.paths import AIRFLOW_PODS, POLICIES
from tests.support.pods import UNLABELLED, WORKER, admitted_pod, airflow_pod

DENIED = Path(__file__).parent.parent / "policies" / "tests" / "pods"


def review(pod: dict) -> dict:
    return pod_review(pod, uid="cli", namespace=pod["metadata"].get("namespace", ""))


@pytest.mark.parametrize("pod_file", sorted(AIRFLOW_PODS.glob("*.json")) + sorted(
    DENIED.glob("*.json")), ids=lambda p: p.stem)
def test_validate_cli_and_post_validate_agree(pod_file: Path, cli, webhook_client) -> None:
    pod = json.loads(pod_file.read_text())
    code, out, _ = cli(["validate", str(pod_file), "--policies", str(POLICIES)])
    http = webhook_client.post("/validate", json=review(pod)).get_json()["response"]
    assert (code == 0) is http["allowed"]
    if not http["allowed"]:
        assert http["status"]["message"] in out
    for warning in http.get("warnings", []):
        assert f"warning: {warning}" in out


def test_validate_exit_codes(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [")
    privileged = airflow_pod("airflow3-executor")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    denied = tmp_path / "privileged.json"
    denied.write_text(json.dumps(privileged))
    ok = tmp_path / "mutated.json"  # the validating hook judges the pod after the mutation
    ok.write_text(json.dumps(admitted_pod("airflow3-executor")))
    assert cli(["validate", str(ok)])[0] == 0
    code, out, _ = cli(["validate", str(ok), str(denied)])
    assert code == 1 and "privileged.json: denied" in out
    code, _, err = cli(["validate", str(ok), str(bad)])
    assert code == 2 and "bad.yaml: error:" in err


def test_validate_level_compares_with_the_clusters_own_psa(cli) -> None:
    kpo = str(AIRFLOW_PODS / "airflow3-kpo.json")
    assert cli(["validate", "--level", "baseline", kpo])[0] == 0
    code, out, _ = cli(["validate", "--level", "restricted", kpo])
    assert code == 1 and "(restricted: allowPrivilegeEscalation)" in out


def test_validate_level_at_an_older_pod_security_version(cli, tmp_path: Path) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["hostUsers"] = False
    pod["spec"]["containers"][0]["securityContext"] = {"procMount": "Unmasked"}
    path = tmp_path / "unmasked.json"
    path.write_text(json.dumps(pod))
    # baseline relaxed procMount for user-namespaced pods in v1.35
    assert cli(["validate", "--level", "baseline", str(path)])[0] == 0
    code, out, _ = cli(["validate", "--level", "baseline", "--version", "v1.34", str(path)])
    assert code == 1 and "(baseline: procMount)" in out
    assert cli(["validate", "--level", "baseline", "--version", "v2", str(path)])[0] == 2


def test_validate_after_mutation_judges_the_pod_the_cluster_would_store(cli,
                                                                         tmp_path: Path) -> None:
    raw = str(AIRFLOW_PODS / "airflow3-kpo.json")
    code, out, _ = cli(["validate", raw])
    assert code == 1 and "(envelope: lockedFields)" in out  # as if the mutating hook was down
    assert cli(["validate", "--after-mutation", raw])[0] == 0
    greedy = airflow_pod("airflow3-kpo")
    greedy["metadata"]["annotations"]["airflow-pod-webhook.io/memory"] = "128Gi"
    path = tmp_path / "greedy.json"
    path.write_text(json.dumps(greedy))
    code, out, _ = cli(["validate", "--after-mutation", str(path)])
    assert code == 1
    assert f"{path}: denied (mutating hook)" in out
    assert "must be at most 64Gi (Envelope/airflow perContainer)" in out


def test_validate_judges_an_unlabelled_pod_an_airflow_account_writes(
        cli, webhook_client, tmp_path: Path) -> None:
    pod_file = tmp_path / "pod.json"
    pod_file.write_text(json.dumps(UNLABELLED))
    code, out, _ = cli(["validate", str(pod_file), "--policies", str(POLICIES)])
    assert code == 0 and out.startswith(f"{pod_file}: skipped: not an Airflow pod")
    code, out, _ = cli(["validate", str(pod_file), "--policies", str(POLICIES),
                        "--username", WORKER])
    assert code == 1
    # As the validating hook sees it when the mutating hook was down: the locks unapplied too.
    assert out.splitlines()[:2] == [
        f"{pod_file}: denied",
        "  pod no-labels violates 4 rule(s): spec.containers[c].resources.limits.memory must "
        "be set: a container without a memory limit is unbounded (Envelope/airflow limits), "
        "got <unset> (envelope: limits); spec.containers[c].securityContext.privileged "
        "must be unset or false, got true (baseline: privileged); spec.hostPID must be unset "
        "or false, got true (baseline: hostNamespaces); spec.securityContext.seccompProfile "
        'must be {"type": "RuntimeDefault"} (locked by PodTemplate/airflow-defaults '
        "spec.securityContext.seccompProfile), got <unset> (envelope: lockedFields)"]
    # The server says the same of the same request.
    http = webhook_client.post("/validate", json=pod_review(UNLABELLED, namespace="airflow",
                                                username=WORKER)).get_json()["response"]
    assert http["status"]["message"] == out.splitlines()[1].strip()


def test_validate_old_judges_an_update_as_the_webhook_does(cli, webhook_client,
                                                           tmp_path: Path) -> None:
    old = admitted_pod("airflow3-kpo")
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["already_checked"] = "True"
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "ok.json").write_text(json.dumps(new))
    new["spec"]["tolerations"] = [{"operator": "Exists"}]
    (tmp_path / "bad.json").write_text(json.dumps(new))
    args = ["--old", str(tmp_path / "old.json"), "--policies", str(POLICIES),
            "--username", WORKER]
    code, out, _ = cli(["validate", str(tmp_path / "ok.json"), *args])
    assert code == 0 and out.startswith(f"{tmp_path / 'ok.json'}: allowed")
    code, out, _ = cli(["validate", str(tmp_path / "bad.json"), *args])
    assert code == 1
    message = out.splitlines()[1].strip()
    assert message.endswith('update violates 1 rule(s): spec.tolerations[0] must name a taint '
                            'key: a key-less toleration tolerates every taint, got '
                            '{"operator":"Exists"} (envelope: placement)')
    http = webhook_client.post("/validate", json=pod_review(
        new, namespace="airflow", username=WORKER, operation="UPDATE",
        old_object=old)).get_json()["response"]
    assert http["status"]["message"] == message


def test_validate_old_refuses_what_an_update_never_is(cli, tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps(UNLABELLED))
    code, _, err = cli(["validate", str(tmp_path / "p.json"), "--subresource", "resize"])
    assert code == 2 and "--subresource judges an update" in err
    code, _, err = cli(["validate", str(tmp_path / "p.json"), "--old", str(tmp_path / "p.json"),
                        "--level", "baseline"])
    assert code == 2 and "no --level or --after-mutation" in err
