"""What every kind's compile step shares: the document being compiled, the errors it finds
(each placed at the file, line and column of the field it concerns), and quantity parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from typing import Any

from webhook.kube.pod_fields import did_you_mean
from webhook.kube.quantity import parse_quantity
from webhook.policy.locate import locate, scalar_text


@dataclass(frozen=True)
class PolicyDocument:
    """One YAML document and where it was read from; `node` is its YAML node tree (with line
    and column marks) when it was read from a file."""

    file: str
    index: int
    body: Any
    node: Any = dataclass_field(default=None, compare=False, repr=False)
    # (path, key node) of keys written twice in one map, found before construction
    duplicates: tuple[tuple[str, Any], ...] = dataclass_field(default=(), compare=False,
                                                              repr=False)


@dataclass(frozen=True)
class Problem:
    """What is wrong at one path of a document, before we know where the path is written."""

    path: str
    reason: str
    value: Any = None  # the bad value, when the message should quote it
    suggestions: tuple[str, ...] = ()
    at_key: bool = False  # the map key itself is wrong (`memroy:`), not its value
    mark: tuple[int, int] | None = None  # (line, column) when known without the path
    quote: bool = True  # False: the reason already shows the value


@dataclass(frozen=True, order=True)
class PolicyError:
    """One error in a policy folder, printed as
    `FILE:LINE:COL: document N (Kind/name): field.path: bad value 'x': reason; did you mean 'y'?`
    """

    file: str
    index: int  # the document in its file, from 0; -1 for an error of the whole folder
    path: str
    reason: str
    line: int = 0  # 1-based; 0 when unknown (documents built in code, not read from a file)
    column: int = 0
    document: str = ""  # Kind/name
    value: str = ""  # the bad value, quoted; "" when the message does not quote one
    suggestions: tuple[str, ...] = ()
    # The file could not be read as YAML at all (or not read): bad input, not a lint finding.
    unreadable: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        if self.index < 0 or self.unreadable:
            return f"{where}: {self.reason}"
        parts = [where, f"document {self.index + 1}"
                 + (f" ({self.document})" if self.document else "")]
        if self.path:
            parts.append(self.path)
        message = f"bad value {self.value}: {self.reason}" if self.value else self.reason
        return ": ".join(parts) + ": " + message + did_you_mean(self.suggestions)


def error_for(doc: PolicyDocument, problem: Problem) -> PolicyError:
    """The error for one problem, with its line, column and bad value when the document
    was read from a file."""
    body = doc.body if isinstance(doc.body, dict) else {}
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    kind, name = body.get("kind"), meta.get("name")
    label = f"{kind}/{name}" if isinstance(kind, str) and isinstance(name, str) else ""
    value = problem.value
    line = column = 0
    if problem.mark is not None:
        line, column = problem.mark
    elif doc.node is not None:
        found = locate(doc.node, problem.path)
        line, column = found.line, found.column
        if problem.at_key and found.exact and found.key is not None:
            mark = found.key.start_mark
            line, column = mark.line + 1, mark.column + 1
        elif found.exact and value is None and not problem.at_key and problem.quote:
            value = scalar_text(found.node)
    return PolicyError(doc.file, doc.index, problem.path, problem.reason, line, column, label,
                       _quote(value) if value is not None else "", problem.suggestions)


def _quote(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= 120 else text[:119] + "…"


class Context:
    """Collects the errors of one compile run; every kind's compile step reports through it."""

    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = errors

    def error(self, doc: PolicyDocument, path: str, reason: str, value: Any = None,
              suggestions: tuple[str, ...] = (), at_key: bool = False, quote: bool = True
              ) -> None:
        self.errors.append(error_for(doc, Problem(path, reason, value, suggestions, at_key,
                                                  quote=quote)))

    def quantity(self, doc: PolicyDocument, path: str, value: Any) -> Decimal | None:
        try:
            return parse_quantity(value)
        except (ValueError, TypeError, ArithmeticError):
            self.error(doc, path, "is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)", value)
            return None
