"""JSON Schemas of the policy kinds, checked with `jsonschema` when a folder loads.

Pod fragments (`template`) are free-form here; their fields are checked against the
Kubernetes Pod model separately (webhook.kube.pod_fields), with the same error format.
"""

from __future__ import annotations

API_GROUP = "airflow-pod-webhook.io"
API_VERSION = f"{API_GROUP}/v1alpha1"

_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_QUANTITIES = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number"]},
}
# A Kubernetes resource name: `cpu`, `hugepages-1Gi`, `nvidia.com/gpu`, `nvidia.com/mig-1g.5gb`.
RESOURCE_NAME = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
_RESOURCE_BOUNDS = {
    "type": "object",
    "propertyNames": {"pattern": RESOURCE_NAME, "maxLength": 253},
    "additionalProperties": {"type": ["string", "number"]},
}
_RESOURCE_MAXIMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"requests": _RESOURCE_BOUNDS, "limits": _RESOURCE_BOUNDS},
}
_TOLERATION_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["key"],
    "properties": {
        "key": {"type": "string", "minLength": 1},
        "values": _STRINGS,
        "effects": {
            "type": "array",
            "items": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
        },
    },
}
_NAME_ALLOWLIST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["allowed"],
    "properties": {"allowed": _STRINGS},
}
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string", "minLength": 1},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": _STRINGS,
                },
            },
        },
    },
}
MATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "podTypes": {
            "type": "array",
            "items": {"enum": ["executor", "kpo", "other"]},
            "minItems": 1,
        },
        "namespaces": _STRINGS,
        "dagIds": _STRINGS,
        "taskIds": _STRINGS,
        "labelSelector": _LABEL_SELECTOR,
    },
}
_POD_FRAGMENT = {"type": "object"}
_MODE = {"enum": ["enforce", "warn", "audit"]}
_FIELD_PATHS = {
    "type": "array",
    "items": {"type": "string", "pattern": r"^(metadata|spec)(\.[A-Za-z0-9_/.-]+|\[[^\]]+\])*$"},
}

SPEC_SCHEMAS: dict[str, dict] = {
    "PodTemplate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["template"],
        "properties": {
            "match": MATCH,
            "priority": {"type": "integer"},
            "template": _POD_FRAGMENT,
            "lockedFields": _FIELD_PATHS,
        },
    },
    "Profile": {
        "type": "object",
        "additionalProperties": False,
        "required": ["template"],
        "properties": {
            "description": {"type": "string"},
            "match": MATCH,
            "template": _POD_FRAGMENT,
        },
    },
    "TaskPolicy": {
        "type": "object",
        "additionalProperties": False,
        "required": ["match", "template"],
        "properties": {
            "description": {"type": "string"},
            "match": {**MATCH, "required": ["dagIds"]},
            "template": _POD_FRAGMENT,
        },
    },
    "OverridePolicy": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "match": MATCH,
            "allowedFields": _FIELD_PATHS,
            "allowedProfiles": _STRINGS,
        },
    },
    "Envelope": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "match": MATCH,
            "mode": _MODE,
            "resources": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "perContainer": _RESOURCE_MAXIMA,
                    "perPod": _RESOURCE_MAXIMA,
                    "unlisted": {"enum": ["refuse"]},
                    "claimTemplates": _STRINGS,
                },
            },
            "placement": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "nodePools": _STRINGS,
                    "requireNodePool": {"type": "boolean"},
                    "otherNodeLabels": _STRINGS,
                    "tolerations": {"type": "array", "items": _TOLERATION_RULE},
                },
            },
            "priorityClassNames": _NAME_ALLOWLIST,
            "serviceAccountNames": {
                **_NAME_ALLOWLIST,
                "properties": {**_NAME_ALLOWLIST["properties"], "forbidden": _STRINGS},
            },
            "schedulerNames": _NAME_ALLOWLIST,
            "runtimeClassNames": _NAME_ALLOWLIST,
            "schedulingGates": _NAME_ALLOWLIST,
            "verifyLockedFields": {"type": "boolean"},
        },
    },
    "ValidationPolicy": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "match": MATCH,
            "mode": _MODE,
            "podSecurity": {
                "type": "object",
                "additionalProperties": False,
                "required": ["level"],
                "properties": {
                    "level": {"enum": ["baseline", "restricted"]},
                    "version": {"type": "string", "pattern": r"^(latest|v1\.\d+)$"},
                },
            },
            "rules": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "images": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "allowedRegistries": _STRINGS,
                            "forbidLatestTag": {"type": "boolean"},
                        },
                    },
                    "resources": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "requireRequests": _STRINGS,
                            "requireLimits": _STRINGS,
                            "maxRequests": _QUANTITIES,
                            "maxLimits": _QUANTITIES,
                        },
                    },
                    "serviceAccounts": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["allowed"],
                        "properties": {"allowed": _STRINGS},
                    },
                    "hostPaths": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["allowedPrefixes"],
                        "properties": {"allowedPrefixes": _STRINGS},
                    },
                    "nodeSelectors": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["allowed"],
                        "properties": {
                            "allowed": {"type": "object", "additionalProperties": _STRINGS}
                        },
                    },
                    "tolerations": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["allowedKeys"],
                        "properties": {"allowedKeys": _STRINGS},
                    },
                    "automountServiceAccountToken": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["allowed"],
                        "properties": {"allowed": {"type": "boolean"}},
                    },
                },
            },
        },
    },
    "Exemption": {
        "type": "object",
        "additionalProperties": False,
        "required": ["match", "reason"],
        "properties": {
            "match": MATCH,
            "rules": _STRINGS,
            "reason": {"type": "string", "minLength": 1},
            "expires": {"type": "string", "format": "date"},
        },
    },
    "Settings": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "annotationPrefix": {
                "type": "string",
                "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/$",
            },
            "nodePoolLabel": {"type": "string", "minLength": 1},
            "identity": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "trustedCreators": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["usernames"],
                            "properties": {
                                "namespaces": _STRINGS, "usernames": _STRINGS,
                                "podTypes": {"type": "array", "minItems": 1,
                                             "items": {"enum": ["executor", "kpo"]}},
                            },
                        },
                    },
                    "untrusted": {"enum": ["warn", "deny"]},
                    "airflowAccounts": _STRINGS,
                },
            },
        },
    },
}

KINDS = tuple(SPEC_SCHEMAS)

DOCUMENT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"enum": list(KINDS)},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                         "maxLength": 253},
                "annotations": {"type": "object"},
                "labels": {"type": "object"},
            },
        },
        "spec": {"type": "object"},
    },
}
