"""ValidationPolicy: the Pod Security level and Airflow rules the validating hook applies."""

from __future__ import annotations

from types import MappingProxyType

from webhook.policy.compile.context import Context, PolicyDocument
from webhook.policy.compile.matches import compile_match
from webhook.policy.model import Source, ValidationPolicy


def compile_validation(ctx: Context, doc: PolicyDocument, name: str, spec: dict
                       ) -> ValidationPolicy:
    rules = spec.get("rules", {})
    for rule in ("resources",):
        for bound in ("maxRequests", "maxLimits"):
            for resource, value in rules.get(rule, {}).get(bound, {}).items():
                ctx.quantity(doc, f"spec.rules.{rule}.{bound}.{resource}", value)
    security = spec.get("podSecurity") or {}
    return ValidationPolicy(
        name=name,
        match=compile_match(ctx, doc, spec.get("match")),
        mode=spec.get("mode", "enforce"),
        pod_security_level=security.get("level"),
        pod_security_version=security.get("version", "latest"),
        rules=MappingProxyType({k: MappingProxyType(v) for k, v in rules.items()}),
        source=Source(doc.file, doc.index),
    )
