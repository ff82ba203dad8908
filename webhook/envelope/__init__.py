"""The admin's Envelope: the bounds an Airflow pod must lie within, read by both hooks.

One module a section; `registry` lists every check once (ENVELOPE_CHECKS) and runs them. The
validating hook judges the final pod (`check_pod`); the mutating hook refuses an override
annotation early (`check_fragment`) and judges the pod its annotations produce
(`check_whole_pod`) and writes the PodTemplates' locked fields (`locks_for`, the one place
they are read). Below mutation/ and validation/, so both hooks import it and neither
imports the other for it.
"""

from webhook.envelope.context import Lock, locks_for
from webhook.envelope.registry import check_fragment, check_pod, check_whole_pod

__all__ = ["Lock", "check_fragment", "check_pod", "check_whole_pod", "locks_for"]
