"""What every envelope check receives besides the pod and the Envelope, and the locked fields:
the one place a PodTemplate's locks are read, by the mutating hook that writes them and by
the lockedFields check that holds the final pod to them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from webhook.airflow_pods import PodType
from webhook.pod.field_paths import Segment, get_values
from webhook.policy.model import Envelope, PodTemplate
from webhook.violations import Violation


@dataclass(frozen=True)
class Lock:
    """One locked field of a PodTemplate and the value it holds there (None: unset)."""

    template: str
    path: tuple[Segment, ...]
    value: Any


def locks_for(templates: Iterable[PodTemplate]) -> tuple[Lock, ...]:
    """The locked fields of the templates matching a pod, with the values they hold."""
    out = []
    for template in templates:
        for path in template.locked:
            found = get_values(template.template, path, wildcard=False)
            out.append(Lock(template.name, path, found[0][1] if found else None))
    return tuple(out)


@dataclass(frozen=True)
class EnvelopeContext:
    pool_label: str  # Settings nodePoolLabel
    locks: tuple[Lock, ...] = ()
    fragment: bool = False  # judging an annotation's fragment: only what it sets counts
    pod_type: PodType | None = None  # the pod's Airflow type (None: an annotation's fragment)
    namespace: str = ""  # the namespace the pod is created in


EnvelopeCheck = Callable[[dict, Envelope, EnvelopeContext], list[Violation]]


@dataclass(frozen=True)
class Check:
    run: EnvelopeCheck
    on_pod: bool = True  # judged on the final pod by the validating hook
    on_fragment: bool = True  # judged on an annotation's fragment by the mutating hook
