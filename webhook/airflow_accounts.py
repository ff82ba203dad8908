"""Who writes Airflow's pods: the usernames the Settings name as Airflow's accounts.

The hooks select a pod by its writer (`request.userInfo.username`) as well as by its labels:
labels are the author's to write, the username is the API server's. One pattern language for
both sides of that choice, the kube-apiserver's CEL (matchConditions) and this Python mirror:
an exact username, or a glob where `*` is any run of characters and `?` one character (the
same globs Settings identity.trustedCreators takes). Every other character is itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

__all__ = ["is_glob_username", "username_condition", "username_matcher", "username_regex"]

USERNAME = "request.userInfo.username"


def is_glob_username(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def username_regex(pattern: str) -> str:
    """An anchored regular expression, valid in both RE2 (CEL's `matches`) and Python `re`."""
    out = []
    for char in pattern:
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char.isascii() and not char.isalnum() and char not in ":_@ ":
            out.append("\\" + char)  # both engines accept any escaped ASCII punctuation
        else:
            out.append(char)
    return "^" + "".join(out) + "$"


def _split(patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    unique = list(dict.fromkeys(p for p in patterns if p))
    return ([p for p in unique if not is_glob_username(p)],
            [p for p in unique if is_glob_username(p)])


def _literal(text: str) -> str:
    # A CEL string literal; non-ASCII kept as is (CEL and YAML take UTF-8), so the Helm
    # chart's template (apw.celString: backslash and quote escaped) writes the same text.
    return json.dumps(text, ensure_ascii=False)


def username_condition(patterns: Iterable[str]) -> str | None:
    """CEL true when the request's username is one of `patterns`; None when there are none."""
    exact, globs = _split(patterns)
    terms = []
    if exact:
        names = ",".join(f"\n  {_literal(p)}" for p in exact)
        terms.append(f"{USERNAME} in [{names}\n]")
    terms += [f"{USERNAME}.matches({_literal(username_regex(p))})" for p in globs]
    return " ||\n".join(terms) if terms else None


def username_matcher(patterns: Iterable[str]) -> Callable[[str | None], bool]:
    """What username_condition() says of a username, in Python."""
    exact, globs = _split(patterns)
    names = frozenset(exact)
    compiled = [re.compile(username_regex(p)) for p in globs]

    def matches(username: str | None) -> bool:
        if not username:
            return False
        return username in names or any(r.fullmatch(username) for r in compiled)

    return matches
