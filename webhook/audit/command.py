"""`airflow-pod-webhook audit`: read pods page by page, judge each as it comes, print.

Exit codes as every command: 0 nothing would be denied, 1 something would be denied if every
policy enforced (whatever mode each has now: the adoption path's `mode: audit` step still
flags what enforcing would deny), 2 bad input (raised as SourceError, printed as one line).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
import yaml

from webhook.audit import report
from webhook.audit.files import SourceError, pods_from_files
from webhook.audit.judge import SKIP, audit_pod
from webhook.audit.progress import Progress
from webhook.policy.model import PolicySet

TABLE, JSON, POLICYREPORT = "table", "json", "policyreport"
FORMATS = (TABLE, JSON, POLICYREPORT)
FILE_PAGE = 500


@dataclass(frozen=True)
class AuditOptions:
    files: tuple[str, ...] = ()
    output: str = TABLE
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    selector: str | None = None
    write_reports: bool = False
    page_size: int = 500
    progress: bool | None = None  # None: when stderr is a terminal
    # Who wrote the pods (not recorded on a pod): one of Airflow's accounts has every pod
    # judged, whatever its labels, as the hooks would.
    username: str | None = None


def run(policies: PolicySet, options: AuditOptions, out: TextIO, err: TextIO,
        now: float | None = None) -> int:
    if options.namespace and options.all_namespaces:
        raise SourceError("-n and -A exclude each other")
    if options.files and (options.selector or options.all_namespaces):
        raise SourceError("-l and -A select pods in a cluster; with FILE every pod is read")
    if options.page_size < 1:
        raise SourceError("--chunk-size must be at least 1")
    if options.files and options.write_reports:
        raise SourceError("--write-reports writes into the cluster: audit it, not files")
    api = None
    if options.files:
        pages = iter(list(_file_pages(options, err)))
    else:
        from webhook.audit import cluster

        api = cluster.api_client(options_for_cluster(options))
        pages = ((p.pods, p.remaining) for p in
                 cluster.list_pages(api, options_for_cluster(options, api)))
    stamp = time.time() if now is None else now
    summary = report.Summary()
    results: dict[str, report.NamespaceResults] = {}
    want_reports = options.output == POLICYREPORT or options.write_reports
    progress = Progress(err, options.progress)
    first = True
    if options.output == TABLE:
        out.write(report.table_header() + "\n")
    elif options.output == JSON:
        out.write('{"pods": [')
    try:
        for pods, remaining in pages:
            for pod in pods:
                audit = audit_pod(pod, policies, username=options.username)
                summary.add(audit)
                if want_reports and audit.decision != SKIP:
                    if audit.namespace not in results:
                        results[audit.namespace] = report.NamespaceResults(audit.namespace)
                    results[audit.namespace].add(report.report_results(audit, stamp))
                if options.output == TABLE:
                    out.write(report.table_row(audit) + "\n")
                elif options.output == JSON:
                    out.write(("\n" if first else ",\n") + orjson.dumps(
                        report.pod_json(audit), option=orjson.OPT_INDENT_2).decode())
                first = False
            progress.update(summary.pods,
                            None if remaining is None else summary.pods + remaining)
    finally:
        progress.finish()
    reports = [r.report(stamp) for _, r in sorted(results.items())]
    if options.output == TABLE:
        out.write(report.table_summary(summary) + "\n")
    elif options.output == JSON:
        out.write("\n], \"summary\": " + json.dumps(summary.as_dict(), indent=2) + "}\n")
    else:
        out.write(yaml.safe_dump_all(reports, sort_keys=False) if reports else "")
    if options.write_reports:
        from webhook.audit import cluster

        for line in cluster.write_reports(api, reports):
            print(line, file=err)
    return 1 if summary.denied else 0


def options_for_cluster(options: AuditOptions, api: Any = None) -> Any:
    from webhook.audit.cluster import ClusterOptions

    namespace = options.namespace
    if not namespace and not options.all_namespaces and api is not None:
        namespace = current_namespace(options)
    return ClusterOptions(options.kubeconfig, options.context, namespace, options.selector,
                          options.page_size)


def current_namespace(options: AuditOptions) -> str:
    """As kubectl: the context's namespace, the ServiceAccount's in a pod, else default."""
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=options.kubeconfig)
        if options.context:
            contexts, _ = config.list_kube_config_contexts(config_file=options.kubeconfig)
            active = next((c for c in contexts if c["name"] == options.context), active)
        return (active.get("context") or {}).get("namespace") or "default"
    except Exception:  # no kubeconfig: running in a pod
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                return f.read().strip() or "default"
        except OSError:
            return "default"


def _file_pages(options: AuditOptions, err: TextIO) -> Iterator[tuple[list[dict], int]]:
    # Read every file before printing anything: a bad file is reported alone, not after half
    # a table. Files are the user's own exports, so they fit in memory.
    pods = list(pods_from_files(list(options.files), err))
    if options.namespace:
        pods = [pod if pod["metadata"].get("namespace") else
                {**pod, "metadata": {**pod["metadata"], "namespace": options.namespace}}
                for pod in pods]
    for start in range(0, len(pods), FILE_PAGE):
        yield pods[start:start + FILE_PAGE], max(len(pods) - start - FILE_PAGE, 0)
