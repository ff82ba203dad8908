"""Prelude run inside a real Airflow's python: record every write the kubernetes client sends.

It wraps `kubernetes.client.rest.RESTClientObject.request` (the one place both the generated
API classes and the DynamicClient send from), so what is recorded is exactly what Airflow's
code put on the wire: method, path, query, Content-Type, body, and the answer's status and
body. Before a write to a pod it GETs the pod as stored (the AdmissionReview's oldObject); that
extra read is the recorder's, not Airflow's, and is not recorded. One JSON line per write goes
to $AIRFLOW_REQUEST_LOG; the token and other headers are never written.
"""

import json as _rec_json
import os as _rec_os
import re as _rec_re
import urllib.parse as _rec_urlparse

import kubernetes.client.rest as _rec_rest

_REC_LOG = _rec_os.environ["AIRFLOW_REQUEST_LOG"]
_REC_POD = _rec_re.compile(r"^/api/v1/namespaces/[^/]+/pods/[^/]+(/[^/]+)?$")
_rec_original = _rec_rest.RESTClientObject.request


def _rec_json_or_text(data):
    if data is None:
        return None
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if isinstance(data, str):
        try:
            return _rec_json.loads(data)
        except ValueError:
            return data
    return data


def _rec_request(self, method, url, query_params=None, headers=None, body=None,
                 post_params=None, _preload_content=True, _request_timeout=None):
    parsed = _rec_urlparse.urlsplit(url)
    writes = method in ("POST", "PUT", "PATCH", "DELETE")
    if not writes or "/pods" not in parsed.path:
        return _rec_original(self, method, url, query_params, headers, body, post_params,
                             _preload_content, _request_timeout)
    old = None
    match = _REC_POD.match(parsed.path)
    if match and not match.group(1):
        read_headers = {k: v for k, v in (headers or {}).items()
                        if k.lower() not in ("content-type",)}
        read_headers["Accept"] = "application/json"
        try:
            got = _rec_original(self, "GET", url, None, read_headers)
            old = _rec_json_or_text(got.data)
        except Exception as exc:  # the recorder must not change Airflow's flow
            old = {"recorder_error": repr(exc)}
    entry = {"method": method, "path": parsed.path, "old_object": old}
    # What reaches urllib3 is what goes on the wire: the kubernetes client rewrites the
    # Content-Type of a PATCH inside request() (json-patch for a list body, else
    # strategic-merge-patch), so headers and body are read there, not from our arguments.
    sent = {}
    pool = self.pool_manager

    def spy(spy_method, spy_url, **kwargs):
        sent.update(url=spy_url, headers=kwargs.get("headers") or {}, body=kwargs.get("body"),
                    fields=kwargs.get("fields"))
        return type(pool).request(pool, spy_method, spy_url, **kwargs)

    pool.request = spy
    try:
        response = _rec_original(self, method, url, query_params, headers, body, post_params,
                                 _preload_content, _request_timeout)
    except _rec_rest.ApiException as exc:
        entry.update(status=exc.status, response=_rec_json_or_text(exc.body))
        _rec_write(entry, sent)
        raise
    finally:
        del pool.request
    entry.update(status=response.status,
                 response=_rec_json_or_text(response.data) if _preload_content else None)
    _rec_write(entry, sent)
    return response


def _rec_write(entry, sent):
    headers = sent.get("headers") or {}
    entry["content_type"] = next((v for k, v in headers.items()
                                  if k.lower() == "content-type"), None)
    entry["query"] = _rec_urlparse.parse_qsl(_rec_urlparse.urlsplit(sent.get("url", "")).query)
    entry["body"] = _rec_json_or_text(sent.get("body"))
    entry["caller"] = _rec_caller()
    with open(_REC_LOG, "a", encoding="utf-8") as log:
        log.write(_rec_json.dumps(entry, sort_keys=True) + "\n")


def _rec_caller():
    """The Airflow functions on the stack, innermost first: who in Airflow sent this."""
    import traceback

    chain = []
    for frame in reversed(traceback.extract_stack()):
        # kube_client.py only wraps the generated client's call_api: not who decided to write.
        if ("/site-packages/airflow/" in frame.filename
                and not frame.filename.endswith("/kube_client.py")):
            module = frame.filename.split("/site-packages/")[-1]
            chain.append(f"{module}:{frame.name}")
    return chain[:3]


_rec_rest.RESTClientObject.request = _rec_request
