"""The Envelope kind as a whole: a real executor pod inside the test envelope passes every
section, and the schema and the compile step are strict about what an admin writes. Each
section's checks are tested in tests/test_envelope_<section>.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from tests.support.envelope import ENVELOPE, good_pod, judged
from webhook.policy.compile import PolicyDocument, compile_policies
from webhook.policy.schema import SPEC_SCHEMAS


def test_the_good_pod_is_inside_the_envelope():
    assert judged(good_pod()) == []


def compile_errors(spec_text: str) -> list[str]:
    docs = [PolicyDocument("e.yaml", 0, {
        "apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": "Envelope",
        "metadata": {"name": "e"}, "spec": yaml.safe_load(spec_text)})]
    result, errors = compile_policies(docs, "r")
    assert result is None
    return [str(e) for e in errors]


@pytest.mark.parametrize(("spec", "expected"), [
    ("{resources: {perContainer: {limits: {cpu: lots}}}}",
     "e.yaml: document 1 (Envelope/e): spec.resources.perContainer.limits[cpu]: bad value "
     "'lots': is not a Kubernetes quantity"),
    ("{resources: {perContainer: {limits: {cpu: NaN}}}}",
     "spec.resources.perContainer.limits[cpu]: bad value 'NaN': is not a Kubernetes quantity"),
    ("{resources: {perContainer: {limits: {cpu: '-1'}}}}",
     "spec.resources.perContainer.limits[cpu]: is not a finite, non-negative quantity"),
    ("{resources: {perPod: {limits: {'nvidia com/gpu': '1'}}}}",
     "spec.resources.perPod.limits.nvidia com/gpu: bad value 'nvidia com/gpu': is not a valid "
     "extended resource name"),
    ("{resources: {perPod: {limit: {cpu: '1'}}}}",
     "spec.resources.perPod.limit: bad value 'limit': is not a field here (fields: requests, "
     "limits); did you mean 'limits'?"),
    ("{resources: {unlisted: allow}}",
     "spec.resources.unlisted: bad value 'allow': must be one of refuse"),
    ("{placement: {nodePool: [a]}}",
     "spec.placement.nodePool: bad value 'nodePool': is not a field here"),
    ("{placement: {requireNodePool: true}}",
     "spec.placement.nodePools: requireNodePool needs the list of nodePools"),
    ("{placement: {tolerations: [{key: ''}]}}",
     "spec.placement.tolerations[0].key: should be non-empty"),
    ("{serviceAccountNames: {forbidden: [x]}}",
     "spec.serviceAccountNames: 'allowed' is a required property"),
    ("{schedulerNames: {allowed: [x], forbidden: [y]}}",
     "spec.schedulerNames.forbidden: bad value 'forbidden': is not a field here (fields: "
     "allowed)"),
    ("{mode: deny}", "spec.mode: bad value 'deny': must be one of enforce, warn, audit"),
    # issue 20's sections
    ("{volumes: {types: [hostpath]}}",
     "spec.volumes.types[0]: bad value 'hostpath': must be one of awsElasticBlockStore"),
    ("{volumes: {types: [emptyDir], emptyDir: {maxSizeLimit: lots}}}",
     "spec.volumes.emptyDir.maxSizeLimit: bad value 'lots': is not a Kubernetes quantity"),
    ("{volumes: {types: [ephemeral], ephemeral: {maxStorage: '-1'}}}",
     "spec.volumes.ephemeral.maxStorage: is not a finite, non-negative quantity: '-1'"),
    ("{volumes: {types: [persistentVolumeClaim], persistentVolumeClaims: "
     "[{claimName: x, readonly: true}]}}",
     "spec.volumes.persistentVolumeClaims[0].readonly: bad value 'readonly': is not a field "
     "here (fields: claimName, readOnly); did you mean 'readOnly'?"),
    ("{limits: {required: ['bad name!']}}",
     "spec.limits.required[0]: bad value 'bad name!': is not a Kubernetes resource name"),
    ("{labels: {forbidden: [{key: 'bad key!'}]}}",
     "spec.labels.forbidden[0].key: bad value 'bad key!': is not a valid label key"),
    ("{labels: {forbidden: [{key: tier}], templateLabels: [{podTypes: [other], labels: {}}]}}",
     "spec.labels.templateLabels[0].podTypes[0]: bad value 'other': must be one of executor, "
     "kpo"),
    ("{secrets: {forbidden: ['Bad_Name']}}",
     "spec.secrets.forbidden[0]: bad value 'Bad_Name': is not a Kubernetes object name"),
    ("{secrets: {templateUses: [{secret: x}]}}",
     "spec.secrets.templateUses[0]: 'podTypes' is a required property"),
    ("{affinity: {topologyKeys: ['no good/key/x']}}",
     "spec.affinity.topologyKeys[0]: bad value 'no good/key/x': a label key's prefix must be "
     "a DNS subdomain"),
    ("{affinity: {}}", "spec.affinity: 'topologyKeys' is a required property"),
])
def test_envelope_schema_is_strict(spec, expected):
    errors = compile_errors(spec)
    assert any(expected in e for e in errors), errors


def test_compile_freezes_bounds():
    bounds = ENVELOPE.resources
    assert bounds is not None
    assert bounds.per_container["limits"]["cpu"].value == Decimal(4)
    assert bounds.per_container["limits"]["cpu"].text == "4"
    with pytest.raises(TypeError):
        bounds.per_container["limits"]["cpu"] = None  # type: ignore[index]
    assert SPEC_SCHEMAS["Envelope"]["additionalProperties"] is False
