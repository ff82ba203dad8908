"""A folder's documents into one PolicySet: any error, and there is no set (keep the last)."""

from __future__ import annotations

import hashlib

from webhook.policy.compile import PolicyDocument, compile_policies, revision_of
from webhook.policy.load import parse_documents
from webhook.policy.model import Settings

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
    assert result.settings == Settings()


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
    # The same on every replica and every release: sha256 over each name, a NUL, and the
    # sha256 of its content, in name order.
    expected = hashlib.sha256()
    for name, data in files:
        expected.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    assert revision == expected.hexdigest()[:12]


def every_kind(name: str) -> list[str]:
    """One document of each kind, all named `name` (a name is unique per kind only)."""
    return [
        f"kind: PodTemplate\nmetadata: {{name: {name}}}\nspec: {{template: {{}}, priority: 1}}\n",
        f"kind: Profile\nmetadata: {{name: {name}}}\nspec: {{template: {{}}}}\n",
        f"kind: TaskPolicy\nmetadata: {{name: {name}}}\n"
        f"spec: {{match: {{dagIds: ['{name}*', etl]}}, template: {{}}}}\n",
        f"kind: TaskPolicy\nmetadata: {{name: {name}-exact}}\n"
        f"spec: {{match: {{dagIds: [etl]}}, template: {{}}}}\n",
        f"kind: OverridePolicy\nmetadata: {{name: {name}}}\nspec: {{allowedProfiles: [{name}]}}\n",
        f"kind: ValidationPolicy\nmetadata: {{name: {name}}}\nspec: {{}}\n",
        f"kind: Envelope\nmetadata: {{name: {name}}}\nspec: {{}}\n",
        f"kind: Exemption\nmetadata: {{name: {name}}}\nspec: {{match: {{}}, reason: r}}\n",
    ]


def test_every_kind_is_compiled_into_the_set_in_name_order(compiled) -> None:
    texts = [*every_kind("zz"), *every_kind("aa"),
             "kind: Settings\nmetadata: {name: s}\nspec: {nodePoolLabel: pool}\n"]
    policy = compiled("---\n".join(API + t for t in texts))
    assert policy.document_count == 17
    assert policy.revision == policy.revision.lower() and len(policy.revision) == 12
    assert policy.settings.node_pool_label == "pool"
    assert [t.name for t in policy.templates] == ["aa", "zz"]
    assert list(policy.profiles) == ["zz", "aa"]
    assert policy.profiles["aa"].source.index == 9
    assert policy.profiles["aa"].name == "aa"
    assert [p.name for p in policy.task_policies_glob] == ["aa", "zz"]
    assert {k: [p.name for p in v] for k, v in policy.task_policies_exact.items()} == {
        "etl": ["aa-exact", "zz-exact"]}
    assert [p.name for p in policy.override_policies] == ["aa", "zz"]
    assert [p.name for p in policy.validation_policies] == ["aa", "zz"]
    assert [p.name for p in policy.envelopes] == ["aa", "zz"]
    assert [p.name for p in policy.exemptions] == ["aa", "zz"]


def test_an_error_in_any_kind_means_no_set(compile_yaml) -> None:
    for i, text in enumerate(every_kind("a")):
        broken = text.replace("template: {}", "template: {metadata: null}").replace(
            "spec: {}", "spec: {match: {podTypes: [other]}}").replace(
            "match: {}", "match: {podTypes: [other]}").replace(
            "allowedProfiles: [a]", "allowedProfiles: [b]")
        result, errors = compile_yaml(API + broken)
        assert result is None and len(errors) == 1, (i, errors)


def test_two_settings_documents_are_one_too_many(compile_yaml) -> None:
    _, errors = compile_yaml(SETTINGS + "---\n" + SETTINGS.replace("name: s", "name: t"))
    assert errors == [
        "p.yaml:7:7: document 2 (Settings/t): kind: bad value 'Settings': only one Settings "
        "document is allowed"]


def test_a_set_with_errors_is_not_returned() -> None:
    body = {"apiVersion": "airflow-pod-webhook.io/v1alpha1", "kind": "OverridePolicy",
            "metadata": {"name": "o"}, "spec": {"allowedProfiles": ["nope"]}}
    result, errors = compile_policies([PolicyDocument("code", 0, body)], "r")
    assert result is None and len(errors) == 1


def test_errors_of_one_document_are_in_line_order() -> None:
    text = (API + "kind: Envelope\nmetadata: {name: e}\nspec:\n"
            "  resources: {perPod: {limits: {cpu: lots}}}\n"
            "  placement: {requireNodePool: true}\n"
            "  volumes: {types: [], emptyDir: {maxSizeLimit: much}}\n")
    documents, _ = parse_documents([("p.yaml", text.encode())])
    _, errors = compile_policies(documents, "r")
    assert [(e.line, e.path) for e in errors] == [
        (5, "spec.resources.perPod.limits[cpu]"), (6, "spec.placement.nodePools"),
        (7, "spec.volumes.emptyDir.maxSizeLimit")]


def test_documents_after_a_broken_or_duplicate_one_are_still_compiled(compile_yaml) -> None:
    broken_override = API + "kind: OverridePolicy\nmetadata: {name: o}\nspec: " \
                            "{allowedProfiles: [nope]}\n"
    for first in (API + "kind: Nope\nmetadata: {name: n}\nspec: {}\n",
                  PROFILE + "---\n" + PROFILE):
        _, errors = compile_yaml(first + "---\n" + broken_override)
        assert len(errors) == 2, errors
        assert "no Profile named 'nope'" in errors[1]
