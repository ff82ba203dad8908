"""The offline `mutate` and the mutating hook run the same core: same pod in, same patch out;
a refused override is exit 1 whatever the reason."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from tests.support.admission_reviews import pod_review
from tests.support.paths import AIRFLOW_PODS, POLICIES
from tests.support.pods import airflow_pod

PODS = sorted(p.stem for p in AIRFLOW_PODS.glob("*.json"))
P = "airflow-pod-webhook.io/"


def review(pod: dict) -> dict:
    return pod_review(pod, uid="cli", namespace=pod["metadata"].get("namespace", ""))


@pytest.mark.parametrize("name", PODS)
def test_mutate_cli_and_post_mutate_agree(name: str, cli, webhook_client,
                                          tmp_path: Path) -> None:
    pod_file = AIRFLOW_PODS / f"{name}.json"
    code, out, _ = cli(["mutate", str(pod_file), "--patch", "--policies", str(POLICIES)])
    assert code == 0
    http = webhook_client.post("/mutate", json=review(airflow_pod(name))).get_json()["response"]
    assert json.loads(out) == json.loads(base64.b64decode(http["patch"]))
    # an AdmissionReview file gives the same pod as the bare Pod file
    review_file = tmp_path / "review.json"
    review_file.write_text(json.dumps(review(airflow_pod(name))))
    code, from_review, _ = cli(["mutate", str(review_file), "--policies", str(POLICIES)])
    code, from_pod, _ = cli(["mutate", str(pod_file), "--policies", str(POLICIES)])
    assert yaml.safe_load(from_review) == yaml.safe_load(from_pod)


def test_mutate_refusal_exit_codes(cli, tmp_path: Path) -> None:
    pod = airflow_pod("airflow3-kpo")
    pod["metadata"]["annotations"]["airflow-pod-webhook.io/memory"] = "lots"
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(pod))
    code, _, err = cli(["mutate", str(path)])
    # refused is refused (exit 1), whether the annotation is malformed or over a bound
    assert code == 1 and "refused: annotation airflow-pod-webhook.io/memory" in err
    pod["metadata"]["annotations"]["airflow-pod-webhook.io/memory"] = "512Gi"
    path.write_text(json.dumps(pod))
    assert cli(["mutate", str(path)])[0] == 1


def test_an_override_annotation_over_64_kib_is_refused_by_both_alike(
        tmp_path: Path, webhook_client, cli) -> None:
    pod = airflow_pod("airflow3-executor")
    pod["metadata"]["annotations"][P + "pod-override"] = json.dumps(
        {"metadata": {"labels": {"x": "y" * (70 * 1024)}}})
    http = webhook_client.post("/mutate", json=pod_review(pod)).get_json()["response"]
    assert http["allowed"] is False
    path = tmp_path / "big-override.json"
    path.write_text(json.dumps(pod))
    code, _, err = cli(["mutate", str(path)])
    refusal = f"annotation {P}pod-override: is larger than 65536 bytes (annotations)"
    assert code == 1 and f"refused: {refusal}" in err and refusal in http["status"]["message"]
