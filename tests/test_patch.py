"""Every patch we produce applies to the object kube-apiserver holds and yields our result."""

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.patch import diff_patch, escape_pointer_token, json_equal


def apply(doc, patch):
    return jsonpatch.apply_patch(doc, patch)


def test_missing_parent_map_is_added_whole() -> None:
    patch = diff_patch({"metadata": {}}, {"metadata": {"annotations": {"a/b": "1"}}})
    assert patch == [{"op": "add", "path": "/metadata/annotations", "value": {"a/b": "1"}}]


def test_keys_with_slash_and_tilde_are_escaped() -> None:
    old = {"metadata": {"annotations": {}}}
    new = {"metadata": {"annotations": {"example.com/x~y": "1"}}}
    patch = diff_patch(old, new)
    assert patch[0]["path"] == "/metadata/annotations/example.com~1x~0y"
    assert apply(old, patch) == new
    assert escape_pointer_token("~/") == "~0~1"


def test_false_and_zero_are_different_values() -> None:
    patch = diff_patch({"a": 0}, {"a": False})
    assert patch == [{"op": "replace", "path": "/a", "value": False}]
    assert not json_equal(1, True)
    assert json_equal(1, 1.0)


def test_grown_list_appends_shrunk_list_is_replaced() -> None:
    assert diff_patch({"l": [1]}, {"l": [1, 2]}) == [{"op": "add", "path": "/l/1", "value": 2}]
    assert diff_patch({"l": [1, 2]}, {"l": [2]}) == [{"op": "replace", "path": "/l", "value": [2]}]


def test_identical_documents_give_an_empty_patch() -> None:
    doc = {"spec": {"containers": [{"name": "base", "env": [{"name": "A"}]}]}}
    same = {"spec": {"containers": [{"name": "base", "env": [{"name": "A"}]}]}}
    assert diff_patch(doc, same) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet="ab/~", max_size=3), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(old=st.dictionaries(st.text(alphabet="ab/~", max_size=3), json_values, max_size=4),
       new=st.dictionaries(st.text(alphabet="ab/~", max_size=3), json_values, max_size=4))
def test_patch_applies_and_yields_the_target(old: dict, new: dict) -> None:
    patched = apply(old, diff_patch(old, new))
    assert json_equal(patched, new)
