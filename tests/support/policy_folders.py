"""Policy folders to swap in while the server runs: the bundled files (set A), the same with one
more PodTemplate that adds a label (set B, a patch told apart from A's), and two broken variants
the store must refuse while keeping the last good set."""

from __future__ import annotations

from tests.support.paths import POLICIES
from tests.support.server_process import policy_files_of

BUNDLED = policy_files_of(POLICIES)
VARIANT = b"""\
apiVersion: airflow-pod-webhook.io/v1alpha1
kind: PodTemplate
metadata:
  name: variant-b
spec:
  template:
    metadata:
      labels:
        policy-variant: b
"""
SET_A = BUNDLED
SET_B = {**BUNDLED, "15-variant.yaml": VARIANT}
BAD_YAML = {**BUNDLED, "15-variant.yaml": b"spec: [unclosed\n"}
BAD_SCHEMA = {**BUNDLED, "15-variant.yaml": VARIANT.replace(b"kind: PodTemplate",
                                                           b"kind: PodTemplat")}
