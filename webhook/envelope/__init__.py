"""The admin's Envelope: the bounds an Airflow pod must lie within, read by both hooks.

One module a section; `registry` lists every check once (ENVELOPE_CHECKS) and runs them. The
validating hook judges the final pod (`check_pod`); the mutating hook refuses an override
annotation early (`check_fragment`) and judges the pod its annotations produce
(`check_whole_pod`). Below mutation/ and validation/, so both hooks import it and neither
imports the other for it.
"""

from webhook.envelope.registry import check_fragment, check_pod, check_whole_pod

__all__ = ["check_fragment", "check_pod", "check_whole_pod"]
