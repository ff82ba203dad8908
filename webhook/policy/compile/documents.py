"""Every document's first checks, before its kind is compiled: duplicate keys, the document
schema, the kind's spec schema, and bad names (webhook.policy.names)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from webhook.kube.pod_fields import did_you_mean
from webhook.policy.compile.context import PolicyDocument, Problem
from webhook.policy.names import closest, name_errors
from webhook.policy.schema import DOCUMENT_SCHEMA, SPEC_SCHEMAS

_DOC_VALIDATOR = Draft202012Validator(DOCUMENT_SCHEMA, format_checker=FormatChecker())
_SPEC_VALIDATORS = {
    kind: Draft202012Validator(schema, format_checker=FormatChecker())
    for kind, schema in SPEC_SCHEMAS.items()
}


def schema_errors(validator: Draft202012Validator, body: Any, prefix: str) -> list[tuple[str, str]]:
    """(path, message) of every schema error, for callers that want plain text."""
    return [(p.path, p.reason + did_you_mean(p.suggestions))
            for p in schema_problems(validator, body, prefix)]


def schema_problems(validator: Draft202012Validator, body: Any, prefix: str) -> list[Problem]:
    """Schema errors at the path they concern: an unknown field is reported at its own key,
    with the closest known fields; a value outside an enum with the closest allowed ones."""
    out = []
    for err in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        path = prefix
        for part in err.absolute_path:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = list(err.schema.get("properties", {}))
            for key in sorted(k for k in err.instance if k not in known):
                where = f"{path}.{key}" if path else str(key)
                out.append(Problem(where, f"is not a field here (fields: {', '.join(known)})",
                                   key, closest(str(key), known), at_key=True))
            continue
        if err.validator == "enum" and isinstance(err.instance, str):
            choices = [str(c) for c in err.validator_value]
            out.append(Problem(path or "<document>", f"must be one of {', '.join(choices)}",
                               err.instance, closest(err.instance, choices)))
            continue
        if err.validator == "const" and isinstance(err.instance, str):
            out.append(Problem(path or "<document>", f"must be {err.validator_value}",
                               err.instance))
            continue
        out.append(Problem(path or "<document>", _schema_reason(err)))
    return out


def _schema_reason(err: Any) -> str:
    """jsonschema's message without the value it starts with (the error quotes it)."""
    if err.validator == "pattern":
        return f"must match the pattern {err.validator_value}"
    if err.validator == "format":
        return {"date": "must be a date, YYYY-MM-DD"}.get(err.validator_value,
                                                          f"must be a {err.validator_value}")
    if isinstance(err.instance, (str, int, float)) and not isinstance(err.instance, bool):
        return err.message.removeprefix(f"{err.instance!r} ")
    return err.message


def check_document(doc: PolicyDocument) -> list[Problem]:
    """What keeps a document from being compiled at all: duplicate keys, then the document
    schema, then its kind's spec schema (each stops at the first step that fails)."""
    duplicates = [Problem(path, "is written twice in one map; YAML would silently keep "
                                "only the last", str(node.value), at_key=True,
                          mark=(node.start_mark.line + 1, node.start_mark.column + 1))
                  for path, node in doc.duplicates]
    if duplicates:
        return duplicates
    if not isinstance(doc.body, dict):
        return [Problem("<document>", "must be a mapping with apiVersion, kind, metadata and "
                                      "spec")]
    found = schema_problems(_DOC_VALIDATOR, doc.body, "")
    if found:
        return found
    kind = doc.body["kind"]
    return schema_problems(_SPEC_VALIDATORS[kind], doc.body["spec"], "spec")


def name_problems(doc: PolicyDocument) -> list[Problem]:
    """Bad names in a document of a known kind, reported beside its schema errors (and when
    it has none, the document still compiles, so its other errors show in the same run)."""
    body = doc.body if isinstance(doc.body, dict) else {}
    if body.get("kind") not in SPEC_SCHEMAS or not isinstance(body.get("spec"), dict):
        return []
    return [Problem(bad.path, bad.problem.reason, bad.value, bad.problem.suggestions,
                    at_key=bad.path.endswith(f".{bad.value}"))
            for bad in name_errors(body["kind"], body)]
