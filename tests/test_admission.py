"""AdmissionReview parsing and responses, as kube-apiserver reads them (k8s-admission.md §1)."""

from __future__ import annotations

import base64
import json

import pytest

from webhook.admission import (
    BadReview,
    allow,
    audit_annotations,
    clip_message,
    deny,
    fit_warnings,
    parse_review,
    review_uid,
)


def review(**request) -> dict:
    body = {"uid": "abc", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "ns", "object": {"metadata": {}},
            "userInfo": {"username": "alice"}, "dryRun": False}
    body.update(request)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}


def test_parse_a_pod_create() -> None:
    request = parse_review(review())
    assert request.uid == "abc" and request.is_pod_create and request.username == "alice"


@pytest.mark.parametrize(("change", "acted_on"), [
    ({"operation": "UPDATE"}, False),
    ({"operation": "DELETE", "object": None}, False),
    ({"kind": {"group": "apps", "version": "v1", "kind": "Deployment"}}, False),
    ({"subResource": "ephemeralcontainers"}, False),
    ({"object": None}, False),
    ({}, True),
])
def test_only_pod_creates_are_acted_on(change: dict, acted_on: bool) -> None:
    assert parse_review(review(**change)).is_pod_create is acted_on


@pytest.mark.parametrize(("body", "field"), [
    ([], "<body>"),
    ({"kind": "Pod"}, "kind"),
    ({"kind": "AdmissionReview", "apiVersion": "v2"}, "apiVersion"),
    ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}, "request"),
    (review(uid=""), "request.uid"),
    (review(uid=5), "request.uid"),
    (review(kind="Pod"), "request.kind"),
    (review(operation="PATCH"), "request.operation"),
])
def test_malformed_reviews_name_the_field(body: object, field: str) -> None:
    with pytest.raises(BadReview) as raised:
        parse_review(body)
    assert raised.value.field == field


def test_allow_echoes_uid_version_and_kind_and_encodes_the_patch() -> None:
    patch = [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]
    body = allow(parse_review(review()), patch=patch, warnings=["w"], audit={"k": "v"})
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == "abc" and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == patch
    assert response["warnings"] == ["w"] and response["auditAnnotations"] == {"k": "v"}


def test_allow_without_patch_has_no_patch_type() -> None:
    assert allow(parse_review(review())) == {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "response": {"uid": "abc", "allowed": True}}


def test_deny_carries_status_code_and_message() -> None:
    response = deny("admission.k8s.io/v1", "abc", 403, "no")["response"]
    assert response == {"uid": "abc", "allowed": False, "status": {
        "status": "Failure", "code": 403, "reason": "Forbidden", "message": "no"}}


def test_v1beta1_is_answered_in_kind() -> None:
    body = review()
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    assert allow(parse_review(body))["apiVersion"] == "admission.k8s.io/v1beta1"


def test_warnings_fit_kube_apiserver_limits() -> None:
    fitted = fit_warnings([f"rule {i} " + "x" * 300 for i in range(100)] + ["a\nb", "a\nb"])
    assert all(len(w) <= 256 and "\n" not in w for w in fitted)
    assert sum(len(w) for w in fitted) <= 4096
    assert fitted[-1].startswith("… and ") and fitted[-1].endswith(" more")


def test_a_warning_is_valid_utf8_whatever_text_a_pod_carried() -> None:
    # The base install decodes reviews with json, which keeps a lone surrogate; orjson (and
    # kube-apiserver) would refuse to send it.
    assert fit_warnings(["bad \ud800 value\x07"]) == ["bad ? value"]


def test_audit_keys_kube_apiserver_would_drop_are_not_sent() -> None:
    assert audit_annotations({"ok-key": 1, "bad/key": "x", "-bad": "y"}) == {"ok-key": "1"}


def test_long_messages_are_clipped() -> None:
    assert len(clip_message("x" * 10000)) == 4096


def test_review_uid_finds_the_uid_of_a_bad_review() -> None:
    assert review_uid(review(operation="NOPE")) == ("admission.k8s.io/v1", "abc")
    assert review_uid({"request": {}}) is None
