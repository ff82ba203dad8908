"""`audit FILE`: pods judged as the hooks would judge them if created now, including what
Airflow's accounts write without Airflow's labels."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.paths import POLICIES
from tests.support.pods import UNLABELLED, WORKER


def test_audit_username_judges_unlabelled_pods_as_the_hooks_do(cli, tmp_path: Path) -> None:
    pod_file = tmp_path / "pod.json"
    pod_file.write_text(json.dumps(UNLABELLED))
    code, out, _ = cli(["audit", str(pod_file), "--policies", str(POLICIES), "-o", "json"])
    assert code == 0 and json.loads(out)["pods"][0]["decision"] == "skip"
    code, out, _ = cli(["audit", str(pod_file), "--policies", str(POLICIES), "-o", "json",
                        "--username", WORKER])
    [judged] = json.loads(out)["pods"]
    assert judged["decision"] == "deny" and judged["pod_type"] == "kpo"
