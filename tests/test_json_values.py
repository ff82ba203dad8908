"""JSON equality as kube-apiserver sees values: the comparison `diff_patch` and the envelope use."""

import json

from webhook.pod.json_values import json_equal


def round_trip(doc):
    """The document as kube-apiserver sends or receives it: no object shared with ours."""
    return json.loads(json.dumps(doc))


def test_json_equal_compares_every_member() -> None:
    assert not json_equal(1, True) and not json_equal(False, 0) and not json_equal(0, False)
    assert json_equal(1, 1.0) and json_equal(2.0, 2)
    assert not json_equal(1, "1") and not json_equal(1, 2.5)
    assert not json_equal({"a": 1}, {"a": 2}) and not json_equal({"a": 1}, {"b": 1})
    assert not json_equal([1, 2], [1, 3]) and not json_equal([1], [1, 1])
    assert not json_equal("ab", "ac")
    # Equal values held in distinct objects (as after a JSON round trip) are equal.
    doc = {"l": [{"x": "value-1000", "n": 1000, "f": 2.5, "b": True, "z": None}]}
    assert json_equal(doc, round_trip(doc)) and json_equal(round_trip(doc), doc)
