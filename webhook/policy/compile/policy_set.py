"""All documents of a folder into one immutable PolicySet: each document checked, names unique
per kind, then every kind compiled by its own module; any error means no set."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from types import MappingProxyType

from webhook.policy.compile.context import Context, PolicyDocument, PolicyError, Problem, error_for
from webhook.policy.compile.documents import check_document, name_problems
from webhook.policy.compile.envelopes import compile_envelope
from webhook.policy.compile.exemptions import compile_exemption
from webhook.policy.compile.overrides import compile_override
from webhook.policy.compile.profiles import compile_profile
from webhook.policy.compile.settings import compile_settings
from webhook.policy.compile.task_policies import compile_task_policies
from webhook.policy.compile.templates import compile_template
from webhook.policy.compile.validations import compile_validation
from webhook.policy.model import PolicySet, Settings


def revision_of(files: Iterable[tuple[str, bytes]]) -> str:
    """A content hash of the folder: the same files give the same revision on every replica."""
    digest = hashlib.sha256()
    for name, data in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:12]


def compile_policies(
    documents: list[PolicyDocument], revision: str
) -> tuple[PolicySet | None, list[PolicyError]]:
    """Check every document and build the set; any error means no set (keep the last good)."""
    errors: list[PolicyError] = []
    parsed: dict[str, list[tuple[PolicyDocument, str, dict]]] = defaultdict(list)
    seen: dict[tuple[str, str], PolicyDocument] = {}
    for doc in documents:
        found = check_document(doc)
        errors.extend(error_for(doc, p) for p in (*found, *name_problems(doc)))
        if found:
            continue
        kind, name = doc.body["kind"], doc.body["metadata"]["name"]
        if (kind, name) in seen:
            first = seen[(kind, name)]
            errors.append(error_for(doc, Problem(
                "metadata.name", f"duplicate {kind} name, first defined in {first.file} "
                f"(document {first.index + 1})")))
            continue
        seen[(kind, name)] = doc
        parsed[kind].append((doc, name, doc.body["spec"]))
    if len(parsed["Settings"]) > 1:
        for doc, _, _ in parsed["Settings"][1:]:
            errors.append(error_for(doc, Problem("kind", "only one Settings document is allowed")))
    policy_set = _build(Context(errors), parsed, revision, len(documents))
    errors.sort(key=lambda e: (e.file, e.index, e.line, e.column, e.path, e.reason))
    return (None if errors else policy_set), errors


def _by_name(documents: list[tuple[PolicyDocument, str, dict]]
             ) -> list[tuple[PolicyDocument, str, dict]]:
    return sorted(documents, key=lambda x: x[1])


def _build(ctx: Context, parsed: dict, revision: str, count: int) -> PolicySet:
    settings = Settings()
    for _doc, _, spec in parsed["Settings"][:1]:
        settings = compile_settings(spec)
    templates = sorted(
        (compile_template(ctx, d, n, s) for d, n, s in parsed["PodTemplate"]),
        key=lambda t: (t.priority, t.name),
    )
    profiles = {n: compile_profile(ctx, d, n, s) for d, n, s in parsed["Profile"]}
    exact, globbed = compile_task_policies(ctx, parsed["TaskPolicy"])
    overrides = [compile_override(ctx, d, n, s, profiles)
                 for d, n, s in _by_name(parsed["OverridePolicy"])]
    validations = [compile_validation(ctx, d, n, s)
                   for d, n, s in _by_name(parsed["ValidationPolicy"])]
    envelopes = [compile_envelope(ctx, d, n, s) for d, n, s in _by_name(parsed["Envelope"])]
    exemptions = [compile_exemption(ctx, d, n, s) for d, n, s in _by_name(parsed["Exemption"])]
    return PolicySet(
        revision=revision,
        settings=settings,
        templates=tuple(templates),
        profiles=MappingProxyType(profiles),
        task_policies_exact=MappingProxyType(exact),
        task_policies_glob=globbed,
        override_policies=tuple(overrides),
        validation_policies=tuple(validations),
        envelopes=tuple(envelopes),
        exemptions=tuple(exemptions),
        document_count=count,
    )
