"""envelope: limits — a container with no limit for a bounded resource is unbounded.

The resources section bounds only the limits a container writes: a second container with no
resources would use the whole node. Every container (init containers and sidecars too) must
set a limit for each resource `required` lists, or it is refused, naming the container. A
limit of 0 counts as none: the kubelet passes it on, and the runtime sets no limit for it.

Refuse, not fill in: the mutating hook's PodTemplate already gives a limit to the containers
it knows (the task's `base` container when it states no resources, Airflow's KPO XCom
sidecar, the chart's git-sync containers), so stock pods pass. A limit the webhook invented
for a container it does not know could OOM-kill a task that ran yesterday, silently; a
refusal names the container and the field, so the DAG author sets a limit deliberately.
"""

from __future__ import annotations

from webhook.envelope.context import EnvelopeContext
from webhook.envelope.rule_names import LIMITS
from webhook.kube.quantity import parse_quantity
from webhook.pod.reading import containers, map_at, path_key
from webhook.policy.model import Envelope
from webhook.violations import Violation, violation


def check_limits(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    rules = envelope.limits
    if rules is None:
        return []
    found = []
    for container in containers(pod):
        if container.kind == "ephemeralContainers":  # the API forbids resources on them
            continue
        limits = map_at(map_at(container.fields, "resources"), "limits")
        for name in rules.required:
            if limits.get(name) is None:
                found.append(violation(
                    f"{container.path}.resources.limits{path_key(name)}",
                    f"must be set: a container without a {name} limit is unbounded "
                    f"(Envelope/{envelope.name} limits)", None, LIMITS))
            elif _zero(limits[name]):
                found.append(violation(
                    f"{container.path}.resources.limits{path_key(name)}",
                    f"must be more than 0: the container runtime reads a {name} limit of 0 "
                    f"as no limit (Envelope/{envelope.name} limits)", limits[name], LIMITS))
    return found


def _zero(value: object) -> bool:
    """A limit of 0 (however written: "0", "0Gi", 0): unbounded at runtime. A value that is no
    quantity is the resources section's to report."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return False
    try:
        return parse_quantity(value) == 0
    except (ValueError, TypeError, ArithmeticError):
        return False
