"""Both hooks as kube-apiserver chains them, without a kube-apiserver: mutate, apply the patch,
validate. The offline half of the e2e scenarios (tests/e2e/test_offline.py) and the hooks' side
of the audit's one-verdict walk (tests/test_audit.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonpatch

from tests.e2e.scenarios import DENIED, MUTATED, denial_prefix
from tests.support.admission_reviews import pod_review
from webhook.cluster.registration import MUTATING_WEBHOOK, VALIDATING_WEBHOOK
from webhook.review import MUTATE, VALIDATE, answer


def admit_offline(pod: dict, namespace: str, username: str,
                  policies: Any) -> tuple[str, dict | str]:
    """(outcome, pod or denial text) as kube-apiserver would produce them with our two hooks:
    mutate, apply the patch, validate the result."""
    for hook, name in ((MUTATE, MUTATING_WEBHOOK), (VALIDATE, VALIDATING_WEBHOOK)):
        status, body, _ = answer(hook, pod_review(pod, uid="e2e-offline", namespace=namespace,
                                                   username=username), policies)
        assert status == 200
        response = body["response"]
        if not response["allowed"]:
            return DENIED, (f"{response['status']['code']} "
                            f"{denial_prefix(name)}{response['status']['message']}")
        if response.get("patch"):
            pod = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    return MUTATED, pod
