"""Exemption: rules waived for some pods, with a reason and an optional expiry date."""

from __future__ import annotations

from datetime import date

from webhook.policy.compile.context import Context, PolicyDocument
from webhook.policy.compile.matches import compile_grant_match
from webhook.policy.model import Exemption, Source


def compile_exemption(ctx: Context, doc: PolicyDocument, name: str, spec: dict) -> Exemption:
    return Exemption(name, compile_grant_match(ctx, doc, spec["match"]),
                     tuple(spec.get("rules", ["*"])), spec["reason"], _date(spec.get("expires")),
                     Source(doc.file, doc.index))


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
