"""The rule names the envelope's checks report under, one a section: what Exemptions name,
and what `envelope: <section>` means in a violation. Kept together, each a row of
webhook/rules.py (`known` fails at import otherwise)."""

from webhook.rules import known

RESOURCES = known("envelope: resources")
PLACEMENT = known("envelope: placement")
PRIORITY_CLASSES = known("envelope: priorityClassNames")
SERVICE_ACCOUNTS = known("envelope: serviceAccountNames")
SCHEDULERS = known("envelope: schedulerNames")
RUNTIME_CLASSES = known("envelope: runtimeClassNames")
LOCKED_FIELDS = known("envelope: lockedFields")
SCHEDULING_GATES = known("envelope: schedulingGates")
SECRETS = known("envelope: secrets")
VOLUMES = known("envelope: volumes")
LABELS = known("envelope: labels")
AFFINITY = known("envelope: affinity")
LIMITS = known("envelope: limits")
