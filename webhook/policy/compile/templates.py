"""PodTemplate: a fragment merged into matching pods, by priority, and the fields it locks."""

from __future__ import annotations

from webhook.pod.field_paths import Item, format_path, get_values, parse_path
from webhook.policy.compile.context import Context, PolicyDocument
from webhook.policy.compile.fragments import compile_fragment
from webhook.policy.compile.matches import compile_match
from webhook.policy.model import PodTemplate, Source


def compile_template(ctx: Context, doc: PolicyDocument, name: str, spec: dict) -> PodTemplate:
    fragment = compile_fragment(ctx, doc, spec["template"])
    locked = []
    for i, text in enumerate(spec.get("lockedFields", ())):
        try:
            segments = parse_path(text)
        except ValueError:
            continue  # reported by the name checks (webhook.policy.names)
        if segments[0] == "metadata":
            continue  # likewise
        for pos, seg in enumerate(segments):
            if isinstance(seg, Item) and seg.key != "*" and not get_values(
                    fragment, segments[: pos + 1]):
                ctx.error(doc, f"spec.lockedFields[{i}]",
                          f"the template has no {format_path(segments[: pos + 1])} to lock")
                break
        locked.append(segments)
    return PodTemplate(name, compile_match(ctx, doc, spec.get("match")), spec.get("priority", 0),
                       fragment, tuple(locked), Source(doc.file, doc.index))
