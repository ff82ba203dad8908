"""airflow-pod-webhook: cluster-wide policy for Apache Airflow worker pods."""

__version__ = "0.1.0"
