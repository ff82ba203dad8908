"""Settings: the annotation prefix, node-pool label, limits, and who creates Airflow's pods
(given directly, or as official Helm chart releases whose accounts are derived here)."""

from __future__ import annotations

from collections.abc import Iterable

from webhook.airflow_pods import PodType
from webhook.policy.model import AIRFLOW_POD_TYPES, LIMIT_KEYS, Limits, Settings, TrustedCreators


def compile_settings(spec: dict) -> Settings:
    identity = spec.get("identity", {})
    return Settings(
        annotation_prefix=spec.get("annotationPrefix", Settings.annotation_prefix),
        node_pool_label=spec.get("nodePoolLabel", Settings.node_pool_label),
        trusted_creators=tuple(
            creator for release in identity.get("airflowReleases", ())
            for creator in airflow_chart_creators(
                release["release"], release["namespace"],
                release.get("taskNamespaces") or (release["namespace"],),
                release.get("fullnameOverride"))
        ) + tuple(TrustedCreators(
            tuple(t.get("namespaces", ())), tuple(t["usernames"]),
            frozenset(PodType(x) for x in t.get("podTypes", ())) or AIRFLOW_POD_TYPES)
            for t in identity.get("trustedCreators", ())),
        untrusted=identity.get("untrusted", "warn"),
        airflow_accounts=tuple(
            account for release in identity.get("airflowReleases", ())
            for account in airflow_chart_accounts(
                release["release"], release["namespace"], release.get("fullnameOverride"))
        ) + tuple(identity.get("airflowAccounts", ())),
        limits=Limits(**{LIMIT_KEYS[k]: v for k, v in spec.get("limits", {}).items()}),
    )


def airflow_chart_fullname(release: str, fullname_override: str | None = None) -> str:
    """The official Airflow Helm chart's `airflow.fullname`: the release name when it contains
    "airflow", else <release>-airflow (chart/templates/_helpers.yaml), unless overridden."""
    if fullname_override:
        return fullname_override[:63].rstrip("-")
    name = release if "airflow" in release else f"{release}-airflow"
    return name[:63].rstrip("-")


def airflow_chart_creators(release: str, namespace: str, task_namespaces: Iterable[str],
                           fullname_override: str | None = None
                           ) -> tuple[TrustedCreators, TrustedCreators]:
    """Who an official-chart release creates Airflow pods as, in the task namespaces: its
    scheduler (executor and KPO pods), its workers and triggerer (KPO pods only: every task
    can use its worker's token, so a worker is never trusted for executor pods)."""
    fullname = airflow_chart_fullname(release, fullname_override)
    prefix = f"system:serviceaccount:{namespace}:{fullname}"
    where = tuple(task_namespaces)
    return (
        TrustedCreators(where, (f"{prefix}-scheduler",), AIRFLOW_POD_TYPES),
        TrustedCreators(where, (f"{prefix}-worker", f"{prefix}-triggerer"),
                        frozenset({PodType.KPO})),
    )


def airflow_chart_accounts(release: str, namespace: str, fullname_override: str | None = None
                           ) -> tuple[str, ...]:
    """The release's other accounts that run DAG code or reach the API (the dag-processor
    parses DAG files; Airflow 3's api-server serves the Execution API): Airflow's identities
    beside the creators, so every pod they write is judged."""
    fullname = airflow_chart_fullname(release, fullname_override)
    prefix = f"system:serviceaccount:{namespace}:{fullname}"
    return (f"{prefix}-dag-processor", f"{prefix}-api-server")
