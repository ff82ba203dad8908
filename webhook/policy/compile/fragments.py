"""A pod fragment (`spec.template` of a PodTemplate, Profile or TaskPolicy): fields the pod
schema knows, and nothing Airflow or kube-apiserver owns."""

from __future__ import annotations

from webhook.airflow_pods import AIRFLOW_ANNOTATIONS, AIRFLOW_LABELS
from webhook.kube.pod_fields import fragment_problems
from webhook.policy.compile.context import Context, PolicyDocument

# Fields a policy may never set: Airflow and kube-apiserver own them.
_OWNED_METADATA = ("name", "generateName", "namespace", "uid", "ownerReferences")
_DROPS_IDENTITY = ("may not be null: it would remove Airflow's labels and annotations, which "
                   "select the pod for the validating webhook; remove single keys instead")


def compile_fragment(ctx: Context, doc: PolicyDocument, template: dict,
                     path: str = "spec.template") -> dict:
    for problem in fragment_problems(template):
        ctx.error(doc, f"{path}.{problem.path}", problem.reason,
                  problem.key if problem.at_key else None, at_key=problem.at_key,
                  quote=False)
    if "metadata" in template and template["metadata"] is None:
        ctx.error(doc, f"{path}.metadata", _DROPS_IDENTITY)
    meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
    for field in ("labels", "annotations"):
        if field in meta and meta[field] is None:
            ctx.error(doc, f"{path}.metadata.{field}", _DROPS_IDENTITY)
    for key in _OWNED_METADATA:
        if key in meta:
            ctx.error(doc, f"{path}.metadata.{key}",
                      "is set by Airflow and kube-apiserver; a policy may not change it",
                      key, at_key=True)
    for field, owned in (("labels", AIRFLOW_LABELS), ("annotations", AIRFLOW_ANNOTATIONS)):
        values = meta.get(field) if isinstance(meta.get(field), dict) else {}
        for key in sorted(owned & set(values)):
            ctx.error(doc, f"{path}.metadata.{field}.{key}",
                      "Airflow owns this key (it selects and adopts pods by it)",
                      key, at_key=True)
    return without_type_meta(template)


def without_type_meta(template: dict) -> dict:
    """An admin may paste a whole pod_template_file: its apiVersion and kind are not fields."""
    return {k: v for k, v in template.items() if k not in ("apiVersion", "kind")}
