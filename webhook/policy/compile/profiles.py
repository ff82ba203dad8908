"""Profile: a named fragment a DAG author asks for by annotation."""

from __future__ import annotations

from webhook.policy.compile.context import Context, PolicyDocument
from webhook.policy.compile.fragments import compile_fragment
from webhook.policy.compile.matches import compile_match
from webhook.policy.model import Profile, Source


def compile_profile(ctx: Context, doc: PolicyDocument, name: str, spec: dict) -> Profile:
    return Profile(name, spec.get("description", ""), compile_match(ctx, doc, spec.get("match")),
                   compile_fragment(ctx, doc, spec["template"]), Source(doc.file, doc.index))
