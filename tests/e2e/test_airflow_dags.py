"""The DAGs of tests/fixtures/airflow-dags, without the Airflow cluster policy: the pods real
Airflow 2.10.5 and 3.3.2 build for their tasks go to the real kube-apiserver, created as the
scheduler, and the webhook denies each with the text the import error would have shown
(tests/test_airflow_policy.py parses the same DAGs with the policy)."""

from __future__ import annotations

import copy

import pytest

from tests.e2e.harness import E2EEnvironment, api_message
from tests.e2e.scenarios import scheduler_username
from tests.support.airflow_dags import VERSIONS, parse

pytestmark = [pytest.mark.e2e, pytest.mark.airflow]


@pytest.fixture(scope="module", params=VERSIONS)
def parsed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[dict, dict]:
    home = tmp_path_factory.mktemp(f"dags-{request.param}")
    return (parse(request.param, home / "with", policy=True),
            parse(request.param, home / "without", policy=False))


def test_the_webhook_denies_what_the_import_error_says(e2e: E2EEnvironment, namespace: str,
                                                       parsed) -> None:
    from kubernetes.client.exceptions import ApiException

    with_policy, without = parsed
    assert without["errors"] == {}
    seen = []
    for key, built in sorted(without["pods"].items()):
        pod = copy.deepcopy(built)
        pod["metadata"]["namespace"] = namespace
        pod["metadata"]["name"] = key.replace("_", "-").replace(".", "-")
        file = f"{key.split('.')[0]}.py"
        try:
            if file not in with_policy["errors"]:
                e2e.create_pod(pod, scheduler_username(namespace))  # parsed clean: admitted
                seen.append((file, "admitted"))
                continue
            with pytest.raises(ApiException) as raised:
                e2e.create_pod(pod, scheduler_username(namespace))
            message = api_message(raised.value)
            # An unknown profile is a malformed request (400); a denial is Forbidden (403).
            assert raised.value.status == (400 if file == "unknown_profile_dag.py" else 403), (
                message)
            # The reasons after the pod's name are the import error's, word for word.
            reasons = (message.partition(" rule(s): ")[2]
                       or message.partition(" refusal(s): ")[2])
            assert reasons and reasons in with_policy["errors"][file], (message,
                                                                        with_policy["errors"])
            seen.append((file, "denied"))
        finally:
            e2e.delete_pod(namespace, pod["metadata"]["name"])
    assert sorted(seen) == [
        ("compliant_dag.py", "admitted"), ("kpo_compliant_dag.py", "admitted"),
        ("kpo_privileged_dag.py", "denied"), ("privileged_dag.py", "denied"),
        ("too_much_memory_dag.py", "denied"), ("unknown_profile_dag.py", "denied")]
