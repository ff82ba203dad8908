"""The Envelope's sections, one module each; webhook.validation.envelope lists their checks in
its one registry table (ENVELOPE_CHECKS)."""
