"""Pods from the live cluster through the official `kubernetes` client, page by page, and
PolicyReports written back. The client is imported here only: file audits never need it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from webhook.audit.files import SourceError
from webhook.audit.report import REPORT_API_VERSION

PAGE_SIZE = 500  # kubectl's own chunk size
CONNECT_TIMEOUT, READ_TIMEOUT = 10, 60
MISSING_CLIENT = ("the audit of a live cluster needs the `kubernetes` package: "
                  "pip install kubernetes (or audit pod files instead)")


@dataclass(frozen=True)
class ClusterOptions:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None  # None: every namespace
    selector: str | None = None
    page_size: int = PAGE_SIZE


@dataclass
class Page:
    pods: list[dict]
    remaining: int | None  # remainingItemCount, when the API server says


def _client() -> Any:
    try:
        import kubernetes  # noqa: F401
    except ImportError as exc:
        raise SourceError(MISSING_CLIENT) from exc
    from kubernetes import client, config

    return client, config


def api_client(options: ClusterOptions) -> Any:
    """A client from --kubeconfig/--context, $KUBECONFIG or ~/.kube/config, else in-cluster."""
    client, config = _client()
    configuration = client.Configuration()
    default = os.path.expanduser(os.environ.get("KUBECONFIG", "~/.kube/config").split(
        os.pathsep)[0])
    try:
        if options.kubeconfig or options.context or os.path.exists(default):
            config.load_kube_config(config_file=options.kubeconfig, context=options.context,
                                    client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException as exc:
        raise SourceError(f"kubeconfig: {_one_line(exc)}") from exc
    except Exception as exc:  # unreadable or not YAML: yaml, OS and client errors alike
        where = options.kubeconfig or default
        raise SourceError(f"kubeconfig {where}: {_one_line(exc)}") from exc
    configuration.retries = 1  # an unreachable server fails in seconds, not minutes
    return client.ApiClient(configuration)


def list_pages(api: Any, options: ClusterOptions) -> Iterator[Page]:
    """Pods as the API's own JSON (camelCase), one page at a time: memory holds one page."""
    client, _ = _client()
    core = client.CoreV1Api(api)
    token: str | None = None
    kwargs = {"limit": options.page_size, "_preload_content": False,
              "_request_timeout": (CONNECT_TIMEOUT, READ_TIMEOUT)}
    if options.selector:
        kwargs["label_selector"] = options.selector
    while True:
        if token:
            kwargs["_continue"] = token
        try:
            if options.namespace:
                response = core.list_namespaced_pod(options.namespace, **kwargs)
            else:
                response = core.list_pod_for_all_namespaces(**kwargs)
            body = orjson.loads(response.data)  # 2-3x json's speed on a page of pods
        except client.exceptions.ApiException as exc:
            restart = _expired_continue(exc)
            if restart is not None and token:
                # 410 Gone: the snapshot expired mid-list. The server hands out a token that
                # continues from the same place on a newer snapshot (kubectl does the same).
                token = restart
                continue
            raise SourceError(api_error("listing pods", exc, api)) from exc
        except Exception as exc:  # urllib3 connection errors, TLS, timeouts
            raise SourceError(f"cannot reach the API server at {_host(api)}: "
                              f"{_one_line(exc)}") from exc
        meta = body.get("metadata") or {}
        yield Page(body.get("items") or [], meta.get("remainingItemCount"))
        token = meta.get("continue")
        if not token:
            return


def _expired_continue(exc: Any) -> str | None:
    if getattr(exc, "status", None) != 410:
        return None
    try:
        return (json.loads(exc.body).get("metadata") or {}).get("continue") or None
    except (TypeError, ValueError, AttributeError):
        return None


def write_reports(api: Any, reports: list[dict]) -> list[str]:
    """Create each PolicyReport, or replace the one of the same name: needs get, create and
    update on policyreports.wgpolicyk8s.io. Returns "created|updated ns/name" lines."""
    client, _ = _client()
    custom = client.CustomObjectsApi(api)
    group, version = REPORT_API_VERSION.split("/")
    done = []
    for report in reports:
        namespace, name = report["metadata"]["namespace"], report["metadata"]["name"]
        args = (group, version, namespace, "policyreports")
        try:
            try:
                current = custom.get_namespaced_custom_object(*args, name)
            except client.exceptions.ApiException as exc:
                if exc.status != 404:
                    raise
                custom.create_namespaced_custom_object(*args, report)
                done.append(f"created {namespace}/{name}")
                continue
            body = {**report, "metadata": {**report["metadata"], "resourceVersion":
                                           current["metadata"]["resourceVersion"]}}
            custom.replace_namespaced_custom_object(*args, name, body)
            done.append(f"updated {namespace}/{name}")
        except client.exceptions.ApiException as exc:
            raise SourceError(api_error(f"writing PolicyReport {namespace}/{name}", exc,
                                        api)) from exc
        except Exception as exc:
            raise SourceError(f"cannot reach the API server at {_host(api)}: "
                              f"{_one_line(exc)}") from exc
    return done


def api_error(what: str, exc: Any, api: Any) -> str:
    message = ""
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        message = json.loads(exc.body).get("message", "")
    status = getattr(exc, "status", 0)
    hint = {401: " (the kubeconfig's credentials were not accepted)",
            403: " (the account lacks RBAC permission)",
            404: " (is the PolicyReport CRD installed?)"}.get(status, "")
    return (f"{what} at {_host(api)}: HTTP {status} {getattr(exc, 'reason', '')}"
            f"{': ' + _one_line(message) if message else ''}{hint}")


def _host(api: Any) -> str:
    return getattr(getattr(api, "configuration", None), "host", "?")


def _one_line(exc: Any) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:299] + "…"
