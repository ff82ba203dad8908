"""A folder's documents into one PolicySet: any error, and there is no set (keep the last)."""

from __future__ import annotations

from webhook.policy.compile import PolicyDocument, compile_policies, revision_of

API = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"
PROFILE = API + "kind: Profile\nmetadata: {name: p}\nspec: {template: {}}\n"
SETTINGS = API + "kind: Settings\nmetadata: {name: s}\nspec: {}\n"


def test_a_set_counts_every_document_and_keeps_its_revision() -> None:
    body = {"apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": "Profile",
            "metadata": {"name": "p"}, "spec": {"template": {}}}
    other = dict(body, metadata={"name": "q"})
    result, errors = compile_policies([PolicyDocument("a", 0, body),
                                       PolicyDocument("a", 1, other)], "rev-1")
    assert errors == []
    assert result is not None
    assert (result.revision, result.document_count, sorted(result.profiles)) == (
        "rev-1", 2, ["p", "q"])


def test_a_name_used_twice_in_one_kind_is_an_error(compile_yaml) -> None:
    result, errors = compile_yaml(PROFILE + "---\n" + PROFILE + "---\n"
                                  + PROFILE.replace("Profile", "PodTemplate"))
    assert result is None
    assert errors == ["p.yaml:8:18: document 2 (Profile/p): metadata.name: bad value 'p': "
                      "duplicate Profile name, first defined in p.yaml (document 1)"]


def test_only_one_settings_document(compile_yaml) -> None:
    result, errors = compile_yaml(SETTINGS + "---\n" + SETTINGS.replace("name: s", "name: t")
                                  + "---\n" + SETTINGS.replace("name: s", "name: u"))
    assert result is None
    assert errors == [
        "p.yaml:7:7: document 2 (Settings/t): kind: bad value 'Settings': only one Settings "
        "document is allowed",
        "p.yaml:12:7: document 3 (Settings/u): kind: bad value 'Settings': only one Settings "
        "document is allowed"]


def test_errors_are_sorted_by_file_document_and_place() -> None:
    def override(name: str, profile: str) -> dict:
        return {"apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": "OverridePolicy",
                "metadata": {"name": name}, "spec": {"allowedProfiles": [profile]}}
    _, errors = compile_policies([
        PolicyDocument("b", 0, override("a", "x")), PolicyDocument("a", 1, override("b", "z")),
        PolicyDocument("a", 0, override("c", "y")),
        PolicyDocument("a", 0, dict(override("d", "w"), kind="Nope"))], "r")
    assert [(e.file, e.index, e.path) for e in errors] == [
        ("a", 0, "kind"), ("a", 0, "spec.allowedProfiles[0]"),
        ("a", 1, "spec.allowedProfiles[0]"), ("b", 0, "spec.allowedProfiles[0]")]


def test_the_revision_is_a_hash_of_names_and_contents_in_any_order() -> None:
    files = [("a.yaml", b"one"), ("b.yaml", b"two")]
    revision = revision_of(files)
    assert len(revision) == 12 and int(revision, 16) >= 0
    assert revision_of(list(reversed(files))) == revision
    assert revision_of([("a.yaml", b"one"), ("b.yaml", b"tw0")]) != revision
    assert revision_of([("a.yaml", b"one"), ("c.yaml", b"two")]) != revision
    assert revision_of([("ab", b"c")]) != revision_of([("a", b"bc")])
    assert revision_of([]) == "e3b0c44298fc"
