"""OverridePolicy: which fields and profiles DAG authors may ask for by annotation."""

from __future__ import annotations

from contextlib import suppress

from webhook.pod.field_paths import parse_path
from webhook.policy.compile.context import Context, PolicyDocument
from webhook.policy.compile.matches import compile_grant_match
from webhook.policy.model import OverridePolicy, Source
from webhook.policy.names import closest


def compile_override(ctx: Context, doc: PolicyDocument, name: str, spec: dict, profiles: dict
                     ) -> OverridePolicy:
    allowed = []
    for text in spec.get("allowedFields", ()):
        # a path that does not parse is reported by the name checks (policy.names)
        with suppress(ValueError):
            allowed.append(parse_path(text))
    for i, profile in enumerate(spec.get("allowedProfiles", ())):
        if profile != "*" and profile not in profiles:
            ctx.error(doc, f"spec.allowedProfiles[{i}]",
                      f"no Profile named {profile!r} "
                      f"(profiles: {', '.join(sorted(profiles)) or 'none'})",
                      suggestions=closest(profile, profiles))
    return OverridePolicy(
        name=name,
        match=compile_grant_match(ctx, doc, spec.get("match")),
        allowed_fields=tuple(allowed),
        allowed_profiles=tuple(spec.get("allowedProfiles", ("*",))),
        source=Source(doc.file, doc.index),
    )
