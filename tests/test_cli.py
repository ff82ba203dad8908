"""The offline CLI and the HTTP endpoints run the same core: same pod in, same answer out."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
import yaml

from tests.support.admission_reviews import pod_review
from tests.support.paths import AIRFLOW_PODS, POLICIES
from tests.support.pods import admitted_pod, airflow_pod
from webhook.cli import main
from webhook.policy.store import PolicyStore
from webhook.serving.app import create_app

PODS = sorted(p.stem for p in AIRFLOW_PODS.glob("*.json"))
DENIED = Path(__file__).parent.parent / "policies" / "tests" / "pods"


@pytest.fixture(scope="module")
def client():
    store = PolicyStore(POLICIES)
    store.reload_if_changed()
    return create_app(store).test_client()


def review(pod: dict) -> dict:
    return pod_review(pod, uid="cli", namespace=pod["metadata"].get("namespace", ""))


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", PODS)
def test_mutate_cli_and_post_mutate_agree(name: str, client, capsys, tmp_path: Path) -> None:
    pod_file = AIRFLOW_PODS / f"{name}.json"
    code, out, _ = run(["mutate", str(pod_file), "--patch", "--policies", str(POLICIES)], capsys)
    assert code == 0
    http = client.post("/mutate", json=review(airflow_pod(name))).get_json()["response"]
    assert json.loads(out) == json.loads(base64.b64decode(http["patch"]))
    # an AdmissionReview file gives the same pod as the bare Pod file
    review_file = tmp_path / "review.json"
    review_file.write_text(json.dumps(review(airflow_pod(name))))
    code, from_review, _ = run(["mutate", str(review_file), "--policies", str(POLICIES)], capsys)
    code, from_pod, _ = run(["mutate", str(pod_file), "--policies", str(POLICIES)], capsys)
    assert yaml.safe_load(from_review) == yaml.safe_load(from_pod)


@pytest.mark.parametrize("pod_file", sorted(AIRFLOW_PODS.glob("*.json")) + sorted(
    DENIED.glob("*.json")), ids=lambda p: p.stem)
def test_validate_cli_and_post_validate_agree(pod_file: Path, client, capsys) -> None:
    pod = json.loads(pod_file.read_text())
    code, out, _ = run(["validate", str(pod_file), "--policies", str(POLICIES)], capsys)
    http = client.post("/validate", json=review(pod)).get_json()["response"]
    assert (code == 0) is http["allowed"]
    if not http["allowed"]:
        assert http["status"]["message"] in out
    for warning in http.get("warnings", []):
        assert f"warning: {warning}" in out


def test_validate_exit_codes(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [")
    privileged = airflow_pod("airflow3-executor")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    denied = tmp_path / "privileged.json"
    denied.write_text(json.dumps(privileged))
    ok = tmp_path / "mutated.json"  # the validating hook judges the pod after the mutation
    ok.write_text(json.dumps(admitted_pod("airflow3-executor")))
    assert run(["validate", str(ok)], capsys)[0] == 0
    code, out, _ = run(["validate", str(ok), str(denied)], capsys)
    assert code == 1 and "privileged.json: denied" in out
    code, _, err = run(["validate", str(ok), str(bad)], capsys)
    assert code == 2 and "bad.yaml: error:" in err


def test_validate_level_compares_with_the_clusters_own_psa(capsys) -> None:
    kpo = str(AIRFLOW_PODS / "airflow3-kpo.json")
    assert run(["validate", "--level", "baseline", kpo], capsys)[0] == 0
    code, out, _ = run(["validate", "--level", "restricted", kpo], capsys)
    assert code == 1 and "(restricted: allowPrivilegeEscalation)" in out


def test_mutate_refusal_exit_codes(capsys, tmp_path: Path) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["annotations"]["airflow-pod-webhook.io/memory"] = "lots"
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(pod))
    code, _, err = run(["mutate", str(path)], capsys)
    # refused is refused (exit 1), whether the annotation is malformed or over a bound
    assert code == 1 and "refused: annotation airflow-pod-webhook.io/memory" in err
    pod["metadata"]["annotations"]["airflow-pod-webhook.io/memory"] = "512Gi"
    path.write_text(json.dumps(pod))
    assert run(["mutate", str(path)], capsys)[0] == 1


def test_unreadable_input_is_exit_2_with_one_line(capsys, tmp_path: Path) -> None:
    code, _, err = run(["mutate", str(tmp_path / "missing.yaml")], capsys)
    assert code == 2 and err.startswith("error: cannot read")
    code, _, err = run(["mutate", str(AIRFLOW_PODS / "airflow3-kpo.json"), "--policies",
                        str(tmp_path)], capsys)
    assert code == 2


def test_certs_command_renews_with_the_same_ca(capsys, tmp_path: Path) -> None:
    assert run(["certs", "--out", str(tmp_path)], capsys)[0] == 0
    ca = (tmp_path / "ca.crt").read_bytes()
    cert = (tmp_path / "tls.crt").read_bytes()
    code, out, _ = run(["certs", "--out", str(tmp_path)], capsys)
    assert code == 0 and "airflow-pod-webhook.airflow-pod-webhook.svc" in out
    assert (tmp_path / "ca.crt").read_bytes() == ca and (tmp_path / "tls.crt").read_bytes() != cert


def test_manifests_command_fills_the_ca_bundle(capsys, tmp_path: Path) -> None:
    run(["certs", "--out", str(tmp_path)], capsys)
    code, out, _ = run(["manifests", "--cert-dir", str(tmp_path)], capsys)
    docs = list(yaml.safe_load_all(out))
    assert code == 0 and [d["kind"] for d in docs] == [
        "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    ca = base64.b64encode((tmp_path / "ca.crt").read_bytes()).decode()
    assert all(d["webhooks"][0]["clientConfig"]["caBundle"] == ca for d in docs)


def test_python_dash_m_webhook_is_the_same_cli() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "webhook", "--help"], capture_output=True,
                            text=True, check=True)
    assert "airflow-pod-webhook" in result.stdout and "serve" in result.stdout


def test_validate_level_at_an_older_pod_security_version(capsys, tmp_path: Path) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["hostUsers"] = False
    pod["spec"]["containers"][0]["securityContext"] = {"procMount": "Unmasked"}
    path = tmp_path / "unmasked.json"
    path.write_text(json.dumps(pod))
    # baseline relaxed procMount for user-namespaced pods in v1.35
    assert run(["validate", "--level", "baseline", str(path)], capsys)[0] == 0
    code, out, _ = run(["validate", "--level", "baseline", "--version", "v1.34", str(path)],
                       capsys)
    assert code == 1 and "(baseline: procMount)" in out
    assert run(["validate", "--level", "baseline", "--version", "v2", str(path)], capsys)[0] == 2


def test_manifests_single_call_registers_one_fail_closed_hook(capsys, tmp_path: Path) -> None:
    run(["certs", "--out", str(tmp_path)], capsys)
    code, out, _ = run(["manifests", "--cert-dir", str(tmp_path), "--single-call"], capsys)
    config, writers = list(yaml.safe_load_all(out))
    [hook] = config["webhooks"]
    assert code == 0 and config["kind"] == "MutatingWebhookConfiguration"
    assert hook["clientConfig"]["service"]["path"] == "/mutate-validate"
    assert hook["failurePolicy"] == "Fail" and hook["reinvocationPolicy"] == "IfNeeded"
    # What Airflow's accounts write later (and in the namespaces left out) is still judged.
    assert writers["kind"] == "ValidatingWebhookConfiguration"
    assert [h["name"] for h in writers["webhooks"]] == [
        "validate-writes.airflow-pod-webhook.io",
        "validate-finished-writes.airflow-pod-webhook.io",
        "validate-exec.airflow-pod-webhook.io",
        "validate-system-writes.airflow-pod-webhook.io",
        "refuse-own-namespace.airflow-pod-webhook.io"]


def test_single_call_endpoint_mutates_and_judges_in_one_answer(client) -> None:
    pod = airflow_pod("airflow3-executor")
    ok = client.post("/mutate-validate", json=review(pod)).get_json()["response"]
    assert ok["allowed"] is True and ok["patchType"] == "JSONPatch"
    pod["spec"]["hostPID"] = True
    denied = client.post("/mutate-validate", json=review(pod)).get_json()["response"]
    assert denied["allowed"] is False
    assert "spec.hostPID must be unset or false" in denied["status"]["message"]


def test_validate_after_mutation_judges_the_pod_the_cluster_would_store(capsys,
                                                                         tmp_path: Path) -> None:
    raw = str(AIRFLOW_PODS / "airflow3-kpo.json")
    code, out, _ = run(["validate", raw], capsys)
    assert code == 1 and "(envelope: lockedFields)" in out  # as if the mutating hook was down
    assert run(["validate", "--after-mutation", raw], capsys)[0] == 0
    greedy = airflow_pod("airflow3-kpo")
    greedy["metadata"]["annotations"]["airflow-pod-webhook.io/memory"] = "128Gi"
    path = tmp_path / "greedy.json"
    path.write_text(json.dumps(greedy))
    code, out, _ = run(["validate", "--after-mutation", str(path)], capsys)
    assert code == 1
    assert f"{path}: denied (mutating hook)" in out
    assert "must be at most 64Gi (Envelope/airflow perContainer)" in out


# --- issue 19: the same answer offline for what Airflow's accounts write ---------------------

WORKER = "system:serviceaccount:airflow:airflow-worker"
UNLABELLED = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "no-labels", "namespace": "airflow"},
              "spec": {"hostPID": True,
                       "containers": [{"name": "c", "image": "busybox:1.36",
                                       "securityContext": {"privileged": True}}]}}


def test_validate_judges_an_unlabelled_pod_an_airflow_account_writes(capsys,
                                                                     tmp_path: Path) -> None:
    pod_file = tmp_path / "pod.json"
    pod_file.write_text(json.dumps(UNLABELLED))
    code, out, _ = run(["validate", str(pod_file), "--policies", str(POLICIES)], capsys)
    assert code == 0 and out.startswith(f"{pod_file}: skipped: not an Airflow pod")
    code, out, _ = run(["validate", str(pod_file), "--policies", str(POLICIES),
                        "--username", WORKER], capsys)
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
    app = client_for(POLICIES)
    http = app.post("/validate", json=pod_review(UNLABELLED, namespace="airflow",
                                                username=WORKER)).get_json()["response"]
    assert http["status"]["message"] == out.splitlines()[1].strip()


def client_for(policies: Path):
    store = PolicyStore(policies)
    store.reload_if_changed()
    return create_app(store).test_client()


def test_validate_old_judges_an_update_as_the_webhook_does(capsys, tmp_path: Path) -> None:
    old = admitted_pod("airflow3-kpo")
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["already_checked"] = "True"
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "ok.json").write_text(json.dumps(new))
    new["spec"]["tolerations"] = [{"operator": "Exists"}]
    (tmp_path / "bad.json").write_text(json.dumps(new))
    args = ["--old", str(tmp_path / "old.json"), "--policies", str(POLICIES),
            "--username", WORKER]
    code, out, _ = run(["validate", str(tmp_path / "ok.json"), *args], capsys)
    assert code == 0 and out.startswith(f"{tmp_path / 'ok.json'}: allowed")
    code, out, _ = run(["validate", str(tmp_path / "bad.json"), *args], capsys)
    assert code == 1
    message = out.splitlines()[1].strip()
    assert message.endswith('update violates 1 rule(s): spec.tolerations[0] must name a taint '
                            'key: a key-less toleration tolerates every taint, got '
                            '{"operator":"Exists"} (envelope: placement)')
    http = client_for(POLICIES).post("/validate", json=pod_review(
        new, namespace="airflow", username=WORKER, operation="UPDATE",
        old_object=old)).get_json()["response"]
    assert http["status"]["message"] == message


def test_validate_old_refuses_what_an_update_never_is(capsys, tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps(UNLABELLED))
    code, _, err = run(["validate", str(tmp_path / "p.json"), "--subresource", "resize"],
                       capsys)
    assert code == 2 and "--subresource judges an update" in err
    code, _, err = run(["validate", str(tmp_path / "p.json"), "--old", str(tmp_path / "p.json"),
                        "--level", "baseline"], capsys)
    assert code == 2 and "no --level or --after-mutation" in err


def test_manifests_renders_the_accounts_of_the_policy_folder(capsys, tmp_path: Path) -> None:
    import shutil

    run(["certs", "--out", str(tmp_path / "certs")], capsys)
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    settings = folder / "00-settings.yaml"
    text = settings.read_text()
    assert "    airflowAccounts: []\n" in text
    settings.write_text(text.replace("    airflowAccounts: []\n",
                                     "    airflowAccounts: [system:serviceaccount:etl:runner]\n"))
    code, out, _ = run(["manifests", "--cert-dir", str(tmp_path / "certs"), "--policies",
                        str(folder)], capsys)
    assert code == 0
    hooks = {h["name"]: h for o in yaml.safe_load_all(out) for h in o["webhooks"]}
    writer = [c["expression"] for c in hooks["validate-writes.airflow-pod-webhook.io"][
        "matchConditions"] if c["name"] == "airflow-writer"]
    assert writer == ['request.userInfo.username in [\n'
                      '  "system:serviceaccount:airflow:airflow-scheduler",\n'
                      '  "system:serviceaccount:airflow:airflow-worker",\n'
                      '  "system:serviceaccount:airflow:airflow-triggerer",\n'
                      '  "system:serviceaccount:airflow:airflow-dag-processor",\n'
                      '  "system:serviceaccount:airflow:airflow-api-server",\n'
                      '  "system:serviceaccount:etl:runner"\n]']
    code, _, err = run(["manifests", "--cert-dir", str(tmp_path / "certs"), "--policies",
                        str(tmp_path / "none")], capsys)
    assert code == 2 and "does not load" in err


def test_audit_username_judges_unlabelled_pods_as_the_hooks_do(capsys, tmp_path: Path) -> None:
    pod_file = tmp_path / "pod.json"
    pod_file.write_text(json.dumps(UNLABELLED))
    code, out, _ = run(["audit", str(pod_file), "--policies", str(POLICIES), "-o", "json"],
                       capsys)
    assert code == 0 and json.loads(out)["pods"][0]["decision"] == "skip"
    code, out, _ = run(["audit", str(pod_file), "--policies", str(POLICIES), "-o", "json",
                        "--username", WORKER], capsys)
    [judged] = json.loads(out)["pods"]
    assert judged["decision"] == "deny" and judged["pod_type"] == "kpo"
