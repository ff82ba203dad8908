"""What kube-apiserver keeps of a webhook's words (shared/research/k8s-admission.md §1.4).

Warnings: one line each, valid UTF-8 without control characters (the apiserver drops any
other silently), 256 runes each and 4096 in all before it truncates or drops them. The denial
message and each audit annotation value are held to 4096 characters here, so a pod with a
thousand violations still gets a readable answer. One home for these limits: the request
edge (admission.py) and the verdicts (validation/) both fit their text with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "AUDIT_VALUE_LIMIT",
    "MAX_MESSAGE_CHARS",
    "MAX_WARNINGS_RUNES",
    "MAX_WARNING_RUNES",
    "clean",
    "clip_message",
    "fit_warnings",
    "join_within",
]

MAX_WARNINGS_RUNES = 4096
MAX_WARNING_RUNES = 256
MAX_MESSAGE_CHARS = 4096
AUDIT_VALUE_LIMIT = 4096
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # kube-apiserver drops warnings with these


def clean(text: str) -> str:
    """One line of valid UTF-8: kube-apiserver drops a warning with control characters."""
    text = CONTROL.sub(" ", text)
    return text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"


def clip_message(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def fit_warnings(warnings: Iterable[str]) -> list[str]:
    """Within kube-apiserver's budget: one line each, ≤256 runes, ≤4096 in all, no repeats.

    Past the budget the apiserver truncates or drops warnings silently; we say how many more.
    """
    unique: list[str] = []
    for text in warnings:
        line = clean(str(text)).strip()
        if len(line) > MAX_WARNING_RUNES:
            line = line[: MAX_WARNING_RUNES - 1] + "…"
        if line and line not in unique:
            unique.append(line)
    out: list[str] = []
    used = 0
    for i, line in enumerate(unique):
        rest = len(unique) - i - 1
        tail = 20 if rest else 0  # room for the "… and N more" line
        if used + len(line) + tail > MAX_WARNINGS_RUNES:
            out.append(f"… and {len(unique) - i} more")
            break
        out.append(line)
        used += len(line)
    return out


def join_within(lead: str, items: list[str], limit: int, sep: str = "; ") -> str:
    """lead + items joined by sep, ending with `… and N more` when the rest would not fit."""
    text = lead
    for i, item in enumerate(items):
        joined = text + (sep if i else "") + item
        rest = len(items) - i - 1
        reserve = len(f"{sep}… and {rest} more") if rest else 0
        if len(joined) + reserve > limit:
            return text + (sep if i else "") + f"… and {len(items) - i} more"
        text = joined
    return text
