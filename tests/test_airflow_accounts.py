"""Airflow's accounts as one pattern language for CEL and Python (webhook.airflow_accounts)."""

from __future__ import annotations

import pytest

from webhook.airflow_accounts import username_condition, username_matcher, username_regex


def test_exact_names_are_one_list_and_globs_a_regex_each() -> None:
    assert username_condition(["a:b", "c", "a:b", "ns-*:w"]) == (
        'request.userInfo.username in [\n  "a:b",\n  "c"\n] ||\n'
        'request.userInfo.username.matches("^ns\\\\-.*:w$")')
    assert username_condition([]) is None


@pytest.mark.parametrize(("pattern", "username", "expected"), [
    ("system:serviceaccount:airflow:airflow-worker",
     "system:serviceaccount:airflow:airflow-worker", True),
    ("system:serviceaccount:airflow:airflow-worker",
     "system:serviceaccount:airflow:airflow-worker2", False),
    ("system:serviceaccount:a-*:w", "system:serviceaccount:a-1:w", True),
    ("system:serviceaccount:a-*:w", "system:serviceaccount:b-1:w", False),
    ("system:serviceaccount:a-?:w", "system:serviceaccount:a-12:w", False),
    # A dot is a dot, not "any character"; a trailing newline is not the end.
    ("x.y*", "xzy", False),
    ("x*", "x\n", False),
    ("x", "x\n", False),
    ("x", None, False),
    ("x", "", False),
])
def test_python_and_cel_agree(pattern: str, username: str | None, expected: bool) -> None:
    assert username_matcher([pattern])(username) is expected
    celpy = pytest.importorskip("celpy", reason="cel-python not installed")
    if username is None:
        return
    env = celpy.Environment()
    program = env.program(env.compile(username_condition([pattern])))
    got = program.evaluate({"request": celpy.json_to_cel({"userInfo": {"username": username}})})
    assert bool(got) is expected


def test_regex_escapes_every_punctuation_but_the_username_separators() -> None:
    assert username_regex("system:serviceaccount:ns.1:a+b*") == (
        "^system:serviceaccount:ns\\.1:a\\+b.*$")
