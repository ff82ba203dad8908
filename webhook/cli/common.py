"""What every command shares: the exit-code contract, the error that carries it, flag defaults.

One exit-code contract for every command (README, "Exit codes"):
0 success / allowed / all tests passed; 1 denied / a test failed / lint errors;
2 bad input or usage (unreadable file, bad YAML, missing folder, bad flag).
"""

from __future__ import annotations

import os

EXIT_OK, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_POLICIES = os.environ.get("AIRFLOW_POD_WEBHOOK_POLICIES", "policies")
DEFAULT_CERT_DIR = os.environ.get("AIRFLOW_POD_WEBHOOK_CERT_DIR", "certs")
DEFAULT_SERVICE = "airflow-pod-webhook"
DEFAULT_NAMESPACE = "airflow-pod-webhook"


class InputError(Exception):
    """Input we cannot use; printed as `error: ...`, exit 2 (or `code`)."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code
