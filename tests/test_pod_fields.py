"""The Pod field table the webhook checks fragments against, and what it reports."""

import json
import sys

from tests.support.paths import ROOT
from webhook.kube.pod_fields import fragment_errors

sys.path.insert(0, str(ROOT / "tools"))
from gen_pod_fields import build


def test_table_matches_the_installed_kubernetes_client() -> None:
    # Regenerate with `python tools/gen_pod_fields.py` after upgrading the client.
    table = json.loads((ROOT / "webhook" / "kube" / "schema" / "pod-fields.json").read_text())
    current = build()
    for type_name, fields in table["types"].items():
        assert type_name in current["types"], type_name
        for field, type_ref in fields.items():
            assert current["types"][type_name].get(field) == type_ref, f"{type_name}.{field}"


def test_unknown_fields_and_wrong_types_are_named_by_path() -> None:
    errors = dict(fragment_errors({"spec": {
        "containers": [{"name": "base", "resourcse": {}, "tty": "yes"}],
        "nodeSelector": {"pool": 1}, "hostNetwork": False}}))
    assert errors == {
        "spec.containers[base].resourcse": "is not a field of Container; did you mean "
                                           "'resources'?",
        "spec.containers[base].tty": "must be true or false, got string",
        "spec.nodeSelector.pool": "must be a string, got integer",
    }


def test_null_means_remove_and_is_valid_anywhere() -> None:
    assert fragment_errors({"spec": {"tolerations": None, "containers": [
        {"name": "base", "securityContext": None}]}}) == []
