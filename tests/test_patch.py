"""Every patch we produce applies to the object kube-apiserver holds and yields our result.

The oracle is independent of the code under test: the patch goes through a JSON round trip
(as kube-apiserver receives it), is applied with `jsonpatch`, and the result is compared with
the target as canonical JSON text, never with `json_equal`, which `diff_patch` itself uses.
"""

import json

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.oracles import canonical_json
from webhook.mutation.patch import diff_patch, escape_pointer_token


def round_trip(doc):
    """The document as kube-apiserver sends or receives it: no object shared with ours."""
    return json.loads(json.dumps(doc))


def applied(old, new) -> str:
    patch = round_trip(diff_patch(round_trip(old), round_trip(new)))
    return canonical_json(jsonpatch.apply_patch(round_trip(old), patch))


def test_missing_parent_map_is_added_whole() -> None:
    patch = diff_patch({"metadata": {}}, {"metadata": {"annotations": {"a/b": "1"}}})
    assert patch == [{"op": "add", "path": "/metadata/annotations", "value": {"a/b": "1"}}]


def test_keys_with_slash_and_tilde_are_escaped() -> None:
    old = {"metadata": {"annotations": {}}}
    new = {"metadata": {"annotations": {"example.com/x~y": "1"}}}
    patch = diff_patch(old, new)
    assert patch == [{"op": "add", "path": "/metadata/annotations/example.com~1x~0y",
                      "value": "1"}]
    assert applied(old, new) == canonical_json(new)
    assert escape_pointer_token("~/") == "~0~1"
    assert escape_pointer_token("/~") == "~1~0"  # `~` first, or `/` would come out as `~01`
    assert escape_pointer_token("plain") == "plain"


def test_removed_keys_are_removed_by_escaped_path() -> None:
    assert diff_patch({"a/b": 1, "c": 2}, {"c": 2}) == [{"op": "remove", "path": "/a~1b"}]


def test_false_and_zero_are_different_values() -> None:
    assert diff_patch({"a": 0}, {"a": False}) == [{"op": "replace", "path": "/a", "value": False}]
    assert diff_patch({"a": True}, {"a": 1}) == [{"op": "replace", "path": "/a", "value": 1}]
    assert diff_patch({"a": 1}, {"a": 1.0}) == []  # the same JSON number


def test_grown_list_appends_shrunk_list_is_replaced() -> None:
    assert diff_patch({"l": [1]}, {"l": [1, 2]}) == [{"op": "add", "path": "/l/1", "value": 2}]
    assert diff_patch({"l": [1, 2]}, {"l": [2]}) == [{"op": "replace", "path": "/l", "value": [2]}]
    # A grown list whose old part changed cannot be appended to: it is replaced whole.
    assert diff_patch({"l": [1]}, {"l": [3, 2]}) == [
        {"op": "replace", "path": "/l", "value": [3, 2]}]


def test_a_list_of_the_same_length_is_patched_item_by_item() -> None:
    old = {"l": [{"name": "a", "v": "x1"}, {"name": "b", "v": "y1"}]}
    new = {"l": [{"name": "a", "v": "x1"}, {"name": "b", "v": "y2"}]}
    assert diff_patch(round_trip(old), round_trip(new)) == [
        {"op": "replace", "path": "/l/1/v", "value": "y2"}]


def test_identical_documents_give_an_empty_patch() -> None:
    doc = {"spec": {"containers": [{"name": "base", "env": [{"name": "A", "value": "a-1000"}],
                                    "ports": [{"containerPort": 8080}]}]}}
    assert diff_patch(round_trip(doc), round_trip(doc)) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.integers(1000, 1003)
    | st.text(max_size=3),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet="ab/~", max_size=3), children, max_size=4),
    max_leaves=20,
)
documents = st.dictionaries(st.text(alphabet="ab/~", max_size=3), json_values, max_size=4)


@settings(max_examples=400, deadline=None)
@given(old=documents, new=documents)
def test_patch_applies_and_yields_the_target(old: dict, new: dict) -> None:
    patch = diff_patch(round_trip(old), round_trip(new))
    assert {op["op"] for op in patch} <= {"add", "remove", "replace"}
    assert applied(old, new) == canonical_json(new)


@settings(max_examples=200, deadline=None)
@given(doc=documents)
def test_an_unchanged_document_gives_an_empty_patch(doc: dict) -> None:
    assert diff_patch(round_trip(doc), round_trip(doc)) == []
