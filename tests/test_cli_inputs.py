"""What the commands read (webhook.cli.inputs): a Pod or an AdmissionReview, YAML or JSON,
within the server's own limits and refused in the server's words; a file or policy folder that
cannot be read is one `error:` line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.admission_reviews import pod_review
from tests.support.paths import AIRFLOW_PODS, ROOT
from tests.support.pods import airflow_pod
from webhook.admission import MAX_BODY_BYTES, NESTED_TOO_DEEPLY
from webhook.mutation.mutate import mutate_pod

EXECUTOR = AIRFLOW_PODS / "airflow3-executor.json"
CLI = [sys.executable, "-m", "webhook"]


def text(folder: Path, name: str, content: str) -> str:
    (folder / name).write_text(content)
    return str(folder / name)


def test_unreadable_input_is_exit_2_with_one_line(cli, tmp_path: Path) -> None:
    code, _, err = cli(["mutate", str(tmp_path / "missing.yaml")])
    assert code == 2 and err.startswith("error: cannot read")
    code, _, err = cli(["mutate", str(AIRFLOW_PODS / "airflow3-kpo.json"), "--policies",
                        str(tmp_path)])
    assert code == 2


def test_a_body_over_3_mib_is_refused_by_both_with_the_same_message(
        tmp_path: Path, webhook_client, cli) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"]["padding"] = "x" * MAX_BODY_BYTES
    body = json.dumps(pod_review(pod)).encode()
    (tmp_path / "big.json").write_bytes(body)
    http = webhook_client.post("/validate", data=body, content_type="application/json")
    assert http.status_code == 413
    message = http.get_json()["error"]
    assert message == f"request body is larger than {MAX_BODY_BYTES} bytes"
    for command in ("validate", "mutate"):
        code, _, err = cli([command, str(tmp_path / "big.json")])
        assert code == 2 and message in err


def test_a_body_just_under_3_mib_is_judged_by_both(tmp_path: Path, webhook_client, cli,
                                                   bundled) -> None:
    """Read and judged, not refused as too large: its 3 MiB of text is past the caps
    (Settings limits.text, 1 MiB: etcd could not store such a pod), and both say so."""
    # the mutated pod, as the validating hook receives it
    pod = mutate_pod(airflow_pod("airflow3-executor"), bundled, "data-airflow").pod
    env = pod["spec"]["containers"][0].setdefault("env", [])
    env.append({"name": "PADDING", "value": ""})
    size = len(json.dumps(pod_review(pod)).encode())
    env[-1]["value"] = "x" * (MAX_BODY_BYTES - size - 40)
    body = json.dumps(pod_review(pod)).encode()
    assert MAX_BODY_BYTES - 100 < len(body) <= MAX_BODY_BYTES
    (tmp_path / "near.json").write_bytes(body)
    http = webhook_client.post("/validate", data=body, content_type="application/json")
    answer = http.get_json()["response"]
    cap = "<pod>: more than 1048576 characters of keys and strings in all (Settings limits.text)"
    assert (http.status_code, answer["allowed"]) == (200, False)
    assert cap in answer["status"]["message"]
    code, out, _ = cli(["validate", str(tmp_path / "near.json")])
    assert code == 1 and cap in out


def test_json_nested_past_the_servers_limit_is_refused_with_its_message(
        tmp_path: Path, webhook_client, cli) -> None:
    body = b'{"kind": "Pod", "spec": ' + b"[" * 1100 + b"]" * 1100 + b"}"
    (tmp_path / "deep.json").write_bytes(body)
    http = webhook_client.post("/validate", data=body, content_type="application/json")
    assert http.status_code == 400
    message = http.get_json()["error"]
    assert message.startswith("body is not valid JSON: depth limit exceeded")
    code, _, err = cli(["validate", str(tmp_path / "deep.json")])
    assert code == 2 and message in err


def test_yaml_nested_too_deeply_for_python_is_refused_with_the_servers_message(
        tmp_path: Path, cli) -> None:
    deep = "spec: " + "[" * 5000 + "]" * 5000 + "\n"
    code, _, err = cli(["validate", text(tmp_path, "deep.yaml", deep)])
    assert code == 2 and NESTED_TOO_DEEPLY in err


def test_yaml_aliases_are_refused_like_the_servers_annotations(tmp_path: Path, cli) -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    code, _, err = cli(["validate", text(tmp_path, "bomb.yaml", bomb)])
    assert code == 2 and "YAML aliases are not allowed" in err


def test_standard_input_is_read_within_the_same_limits(tmp_path: Path) -> None:
    ok = subprocess.run([*CLI, "validate", "--after-mutation", "-"], cwd=ROOT,
                        input=EXECUTOR.read_bytes(), capture_output=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith(b"-: allowed\n")
    big = subprocess.run([*CLI, "validate", "-"], cwd=ROOT,
                         input=b" " * (MAX_BODY_BYTES + 1), capture_output=True, timeout=120)
    assert big.returncode == 2
    assert f"request body is larger than {MAX_BODY_BYTES} bytes".encode() in big.stderr
