"""Field paths as admins write them in lockedFields and allowedFields, and what they select."""

from __future__ import annotations

import pytest

from webhook.pod.field_paths import (
    Item,
    covers,
    format_path,
    get_values,
    leaf_paths,
    parse_path,
    with_value,
)


@pytest.mark.parametrize(("text", "segments"), [
    ("spec", ("spec",)),
    ("spec.containers[base].securityContext",
     ("spec", "containers", Item("base"), "securityContext")),
    ("spec.containers[*].env[A]", ("spec", "containers", Item("*"), "env", Item("A"))),
    ("metadata.labels[example.com/team]", ("metadata", "labels", Item("example.com/team"))),
    ("spec.nodeSelector[kubernetes.io/os]", ("spec", "nodeSelector", Item("kubernetes.io/os"))),
])
def test_paths_parse_and_format_back(text, segments) -> None:
    assert parse_path(text) == segments
    assert format_path(segments) == text


@pytest.mark.parametrize(("text", "error"), [
    ("", "field path '' must start with a field name"),
    ("[base].x", "field path '[base].x' must start with a field name"),
    ("spec[", "cannot parse field path 'spec[' at offset 4"),
    ("spec x", "cannot parse field path 'spec x' at offset 0"),
    ("spec.x y", "cannot parse field path 'spec.x y' at offset 4"),
])
def test_bad_paths_are_refused_with_where(text, error) -> None:
    with pytest.raises(ValueError) as raised:
        parse_path(text)
    assert str(raised.value) == error


def test_covers_is_a_prefix_with_star_for_any_item() -> None:
    star = parse_path("spec.containers[*].resources")
    assert covers(star, parse_path("spec.containers[base].resources.limits.cpu"))
    assert covers(star, star)
    assert not covers(star, parse_path("spec.containers[base]"))  # shorter than the prefix
    assert not covers(star, parse_path("spec.containers[base].env"))
    assert not covers(parse_path("spec.containers[base]"), parse_path("spec.containers[side]"))
    # An item key and a field of the same text are the same step of the path.
    assert covers(parse_path("metadata.labels.team"), parse_path("metadata.labels[team]"))


def test_leaf_paths_name_items_by_merge_key_and_dotted_keys_by_brackets() -> None:
    fragment = {
        "metadata": {"labels": {"example.com/x": "a", "team": "b"}},
        "spec": {
            "containers": [{"name": "base", "resources": {"limits": {"cpu": "1"}}},
                           {"name": "side"}],
            "tolerations": [{"key": "spot"}],
            "args": ["x"],
            "nodeSelector": {},
            "containersNoKey": [{"image": "x"}],
            "ports": [{"containerPort": 80, "protocol": "UDP", "hostPort": 1}],
        },
    }
    assert [(format_path(path), value) for path, value in leaf_paths(fragment)] == [
        ("metadata.labels[example.com/x]", "a"),
        ("metadata.labels.team", "b"),
        ("spec.containers[base].resources.limits.cpu", "1"),
        ("spec.containers[side]", {"name": "side"}),
        ("spec.tolerations", [{"key": "spot"}]),
        ("spec.args", ["x"]),
        ("spec.nodeSelector", {}),
        ("spec.containersNoKey", [{"image": "x"}]),
        ("spec.ports[80,UDP].hostPort", 1),
    ]
    # A keyed list with an item missing its key is one leaf, not items.
    assert leaf_paths({"spec": {"env": [{"name": "A"}, {"value": "x"}]}}) == [
        (("spec", "env"), [{"name": "A"}, {"value": "x"}])]
    assert leaf_paths("scalar") == [((), "scalar")]


POD = {"spec": {
    "securityContext": {"runAsUser": 0},
    "containers": [{"name": "base", "env": [{"name": "A", "value": "1"}]},
                   {"name": "*", "securityContext": {"runAsNonRoot": True}},
                   "junk"],
    "volumes": [{"name": "logs", "emptyDir": {}}],
}}


def test_get_values_selects_items_by_key_star_and_literal_star() -> None:
    def found(path: str, **kw) -> list:
        return [(format_path(p), v) for p, v in get_values(POD, parse_path(path), **kw)]

    assert found("spec.securityContext.runAsUser") == [("spec.securityContext.runAsUser", 0)]
    assert found("spec.containers[base].env[A].value") == [
        ("spec.containers[base].env[A].value", "1")]
    assert found("spec.containers[*].name") == [("spec.containers[base].name", "base"),
                                                ("spec.containers[*].name", "*")]
    assert found("spec.containers[*].securityContext", wildcard=False) == [
        ("spec.containers[*].securityContext", {"runAsNonRoot": True})]
    assert found("spec.volumes[logs].emptyDir") == [("spec.volumes[logs].emptyDir", {})]
    assert found("spec.containers[ghost].env") == []
    assert found("spec.missing.x") == []
    assert found("spec.securityContext[runAsUser]") == [("spec.securityContext[runAsUser]", 0)]
    assert found("spec.securityContext[nope]") == []
    assert found("spec.hostNetwork[x]") == []  # an item of something that is not a list


def test_with_value_sets_creates_removes_and_shares_the_rest() -> None:
    out = with_value(POD, parse_path("spec.securityContext.seccompProfile"),
                     {"type": "RuntimeDefault"})
    assert out["spec"]["securityContext"] == {"runAsUser": 0,
                                              "seccompProfile": {"type": "RuntimeDefault"}}
    assert out["spec"]["containers"] is POD["spec"]["containers"]  # untouched: shared
    assert "seccompProfile" not in POD["spec"]["securityContext"]  # the input is not changed

    # Missing maps on the way are created ...
    created = with_value({"spec": {}}, parse_path("spec.securityContext.runAsNonRoot"), True)
    assert created == {"spec": {"securityContext": {"runAsNonRoot": True}}}
    # ... but never a list item, nor a map below one.
    absent = with_value(POD, parse_path("spec.containers[ghost].securityContext.x"), 1)
    assert absent == POD
    below = with_value(POD, parse_path("spec.containers[base].securityContext.x"), 1)
    assert below["spec"]["containers"][0] == {"name": "base", "env": [{"name": "A",
                                                                         "value": "1"}]}

    # A None value removes the field (unset in the template: unset in the pod).
    removed = with_value(POD, parse_path("spec.securityContext.runAsUser"), None)
    assert removed["spec"]["securityContext"] == {}
    assert with_value(POD, parse_path("spec.securityContext.absent"), None) == POD


def test_with_value_on_items_by_key_and_star() -> None:
    env = with_value(POD, parse_path("spec.containers[base].env[A].value"), "2")
    assert env["spec"]["containers"][0]["env"] == [{"name": "A", "value": "2"}]
    assert env["spec"]["containers"][1] is POD["spec"]["containers"][1]
    everyone = with_value(POD, parse_path("spec.containers[*].image"), "x")
    assert [c.get("image") if isinstance(c, dict) else c
            for c in everyone["spec"]["containers"]] == ["x", "x", "junk"]
    # A bracket on a map selects the key, when it is there.
    label = with_value({"metadata": {"labels": {"a.b/c": "1"}}},
                       parse_path("metadata.labels[a.b/c]"), "2")
    assert label == {"metadata": {"labels": {"a.b/c": "2"}}}
    missing = {"metadata": {"labels": {}}}
    assert with_value(missing, parse_path("metadata.labels[x].y"), "2") == missing
    # A path through something that is not a map or list leaves the pod as it is.
    odd = {"spec": {"securityContext": "x", "containers": "y"}}
    assert with_value(odd, parse_path("spec.securityContext.runAsUser"), 1) == odd
    assert with_value(odd, parse_path("spec.containers[base].image"), "i") == odd
    assert with_value(odd, parse_path("spec.securityContext.a.b"), 1) == odd


MOUNTS = {"spec": {"containers": [{"name": "base", "volumeMounts": [
    {"name": "data", "mountPath": "/data"}, {"name": "logs", "mountPath": "/logs"}]}]}}


def test_items_of_lists_keyed_by_other_fields_than_name() -> None:
    for text in ("spec.containers[base].volumeMounts[/data].name",
                 "spec.containers[base][volumeMounts][/data].name"):
        assert [v for _, v in get_values(MOUNTS, parse_path(text))] == ["data"]
    out = with_value(MOUNTS, parse_path("spec.containers[base].volumeMounts[/logs].readOnly"),
                     True)
    assert out["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"},
        {"name": "logs", "mountPath": "/logs", "readOnly": True}]


def test_brackets_on_maps_then_items_and_stars_below_them() -> None:
    def values(path: str) -> list:
        return [v for _, v in get_values(POD, parse_path(path))]

    assert values("spec[containers][*].name") == ["base", "*"]
    assert values("spec.containers[base].env[*].name") == ["A"]
    assert values("spec[securityContext][runAsUser].x") == []  # nothing below a scalar
    out = with_value(POD, parse_path("spec[securityContext].runAsNonRoot"), True)
    assert out["spec"]["securityContext"] == {"runAsUser": 0, "runAsNonRoot": True}
    assert out["spec"]["containers"] is POD["spec"]["containers"]


def test_leaf_keys_with_a_dot_or_a_slash_alone_are_bracketed() -> None:
    fragment = {"metadata": {"labels": {"team/x": "a", "app.tier": "b", "plain": "c"}}}
    assert [format_path(path) for path, _ in leaf_paths(fragment)] == [
        "metadata.labels[team/x]", "metadata.labels[app.tier]", "metadata.labels.plain"]


def test_a_list_with_no_merge_key_selects_items_by_name() -> None:
    pod = {"spec": {"dnsConfig": {"options": [{"name": "ndots", "value": "2"},
                                              {"name": "edns0"}]}}}
    assert [v for _, v in get_values(pod, parse_path("spec.dnsConfig.options[ndots].value"))] \
        == ["2"]


def test_brackets_on_maps_keep_the_list_key_and_create_nothing_below() -> None:
    out = with_value(MOUNTS, parse_path("spec.containers[base][volumeMounts][/logs].readOnly"),
                     True)
    assert out["spec"]["containers"][0]["volumeMounts"][1] == {
        "name": "logs", "mountPath": "/logs", "readOnly": True}
    assert with_value(POD, parse_path("spec[securityContext].seLinuxOptions.type"), "x") == POD
