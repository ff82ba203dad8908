"""Turn parsed policy documents into one immutable PolicySet, or precise errors.

Pure: documents in, (PolicySet | None, errors) out. Reading files is webhook.policy.load's job.
One module per policy kind (templates, profiles, task_policies, overrides, envelopes,
validations, exemptions, settings), `spec.match` in matches, pod fragments in fragments, the
document checks in documents, and the errors every step reports through in context;
policy_set puts them together. A new kind gets its own module and a line in policy_set._build.
"""

from webhook.policy.compile.context import PolicyDocument, PolicyError, Problem
from webhook.policy.compile.documents import schema_errors, schema_problems
from webhook.policy.compile.fragments import without_type_meta
from webhook.policy.compile.policy_set import compile_policies, revision_of
from webhook.policy.compile.settings import (
    airflow_chart_accounts,
    airflow_chart_creators,
    airflow_chart_fullname,
)

__all__ = [
    "PolicyDocument",
    "PolicyError",
    "Problem",
    "airflow_chart_accounts",
    "airflow_chart_creators",
    "airflow_chart_fullname",
    "compile_policies",
    "revision_of",
    "schema_errors",
    "schema_problems",
    "without_type_meta",
]
