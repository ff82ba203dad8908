"""A typo in a policy never passes: every name is checked against what it names, and the error
says where (file, line, column, document, field) and what was probably meant."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from webhook.policy.load import load_policy_dir
from webhook.policy.names import (
    check_field_path,
    check_resource_name,
    check_rule_name,
    rule_names,
)
from webhook.rules import FAMILIES, RULES, Family, Rule
from webhook.validation.podsecurity import CHECKS

HEADER = "apiVersion: airflow-pod-webhook.io/v1alpha1\n"


def lint(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "p.yaml").write_text(HEADER + textwrap.dedent(text))
    result = load_policy_dir(tmp_path)
    assert result.policy_set is None
    return [str(e) for e in result.errors]


# Each case: the typos and the other kinds of names a policy holds; the whole line is
# pinned, so file, line, column, document, path, bad value and suggestion are all checked.
CASES = {
    "locked field": ("""\
        kind: PodTemplate
        metadata: {name: defaults}
        spec:
          template: {spec: {securityContext: {seccompProfile: {type: RuntimeDefault}}}}
          lockedFields:
            - spec.securityContext.seccompProfle
        """, "p.yaml:7:7: document 1 (PodTemplate/defaults): spec.lockedFields[0]: bad value "
             "'spec.securityContext.seccompProfle': spec.securityContext (PodSecurityContext) "
             "has no field 'seccompProfle'; did you mean 'spec.securityContext.seccompProfile'?"),
    "exemption rule": ("""\
        kind: Exemption
        metadata: {name: legacy}
        spec:
          reason: NFS share
          match: {namespaces: [legacy]}
          rules: ["baseline: hostPathVolume"]
        """, "p.yaml:7:11: document 1 (Exemption/legacy): spec.rules[0]: bad value "
             "'baseline: hostPathVolume': no Pod Security baseline check 'hostPathVolume'; "
             "did you mean 'baseline: hostPathVolumes'?"),
    "envelope resource": ("""\
        kind: Envelope
        metadata: {name: airflow}
        spec:
          resources:
            perContainer:
              limits: {cpu: "16", memroy: 64Gi}
        """, "p.yaml:7:27: document 1 (Envelope/airflow): "
             "spec.resources.perContainer.limits.memroy: bad value 'memroy': is not a Kubernetes "
             "resource name (cpu, memory, ephemeral-storage, hugepages-<size> or a domain/name "
             "like nvidia.com/gpu); did you mean 'memory'?"),
    "envelope exemption rule": ("""\
        kind: Exemption
        metadata: {name: big-batch}
        spec:
          reason: the quarterly backfill needs 200Gi (PLAT-99)
          match: {namespaces: [batch]}
          rules: ["envelope: resource"]
        """, "p.yaml:7:11: document 1 (Exemption/big-batch): spec.rules[0]: bad value "
             "'envelope: resource': no Envelope check 'resource'; did you mean "
             "'envelope: resources'?"),
    "envelope priority class": ("""\
        kind: Envelope
        metadata: {name: airflow}
        spec:
          priorityClassNames: {allowed: ["airflow-*", "Airflow Batch"]}
        """, "p.yaml:5:47: document 1 (Envelope/airflow): spec.priorityClassNames.allowed[1]: "
             "bad value 'Airflow Batch': is not a Kubernetes object name (lowercase "
             "alphanumeric, '-' and '.')"),
    "allowed field": ("""\
        kind: OverridePolicy
        metadata: {name: default}
        spec:
          allowedFields: [spec.nodeSelectr]
        """, "p.yaml:5:19: document 1 (OverridePolicy/default): spec.allowedFields[0]: bad value "
             "'spec.nodeSelectr': spec (PodSpec) has no field 'nodeSelectr'; did you mean "
             "'spec.nodeSelector'?"),
    "allowed field under a list": ("""\
        kind: OverridePolicy
        metadata: {name: default}
        spec:
          allowedFields:
            - "spec.containerz[*].resources"
        """, "p.yaml:6:7: document 1 (OverridePolicy/default): spec.allowedFields[0]: bad value "
             "'spec.containerz[*].resources': spec (PodSpec) has no field 'containerz'; did you "
             "mean 'spec.containers[*].resources' or 'spec.initContainers[*].resources'?"),
    "allowed field missing the item selector": ("""\
        kind: OverridePolicy
        metadata: {name: default}
        spec:
          allowedFields: [spec.containers.env]
        """, "p.yaml:5:19: document 1 (OverridePolicy/default): spec.allowedFields[0]: bad value "
             "'spec.containers.env': spec.containers is a list: select its items with [name] or "
             "[*]; did you mean 'spec.containers[*].env'?"),
    "allowed field under a nested object": ("""\
        kind: OverridePolicy
        metadata: {name: default}
        spec:
          allowedFields: ["spec.affinity.nodeAffinity.requiredDuringScheduling"]
        """, "p.yaml:5:19: document 1 (OverridePolicy/default): spec.allowedFields[0]: bad value "
             "'spec.affinity.nodeAffinity.requiredDuringScheduling': spec.affinity.nodeAffinity "
             "(NodeAffinity) has no field 'requiredDuringScheduling'; did you mean "
             "'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution'?"),
    "required request": ("""\
        kind: ValidationPolicy
        metadata: {name: hygiene}
        spec:
          rules: {resources: {requireRequests: [cpuu]}}
        """, "p.yaml:5:41: document 1 (ValidationPolicy/hygiene): "
             "spec.rules.resources.requireRequests[0]: bad value 'cpuu': is not a Kubernetes "
             "resource name (cpu, memory, ephemeral-storage, hugepages-<size> or a domain/name "
             "like nvidia.com/gpu); did you mean 'cpu'?"),
    "bounded limit": ("""\
        kind: ValidationPolicy
        metadata: {name: hygiene}
        spec:
          rules:
            resources:
              maxLimits: {memroy: 1Gi}
        """, "p.yaml:7:19: document 1 (ValidationPolicy/hygiene): "
             "spec.rules.resources.maxLimits.memroy: bad value 'memroy': is not a Kubernetes "
             "resource name (cpu, memory, ephemeral-storage, hugepages-<size> or a domain/name "
             "like nvidia.com/gpu); did you mean 'memory'?"),
    "override maximum": ("""\
        kind: OverridePolicy
        metadata: {name: default}
        spec:
          maxResources:
            cpu: "4"
            memroy: 1Gi
        """, "p.yaml:7:5: document 1 (OverridePolicy/default): spec.maxResources.memroy: bad value "
             "'memroy': is not a Kubernetes resource name (cpu, memory, ephemeral-storage, "
             "hugepages-<size> or a domain/name like nvidia.com/gpu); did you mean 'memory'?"),
    "profile resource": ("""\
        kind: Profile
        metadata: {name: gpu}
        spec:
          template:
            spec:
              containers:
                - name: base
                  resources: {limits: {gpu: "1"}}
        """, "p.yaml:9:32: document 1 (Profile/gpu): "
             "spec.template.spec.containers[base].resources.limits.gpu: bad value 'gpu': is not "
             "a Kubernetes resource name (cpu, memory, ephemeral-storage, hugepages-<size> or a "
             "domain/name like nvidia.com/gpu); did you mean 'nvidia.com/gpu' or "
             "'amd.com/gpu' or 'cpu'?"),
    "profile reference": ("""\
        kind: Profile
        metadata: {name: highmem}
        spec: {template: {spec: {nodeSelector: {pool: highmem}}}}
        ---
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: OverridePolicy
        metadata: {name: default}
        spec: {allowedProfiles: [hihgmem]}
        """, "p.yaml:9:26: document 2 (OverridePolicy/default): spec.allowedProfiles[0]: bad "
             "value 'hihgmem': no Profile named 'hihgmem' (profiles: highmem); did you mean "
             "'highmem'?"),
    "selector label key": ("""\
        kind: ValidationPolicy
        metadata: {name: spark}
        spec:
          match:
            podTypes: [other]
            labelSelector: {matchLabels: {"spark role": driver}}
          podSecurity: {level: baseline}
        """, "p.yaml:7:35: document 1 (ValidationPolicy/spark): "
             "spec.match.labelSelector.matchLabels.spark role: bad value 'spark role': is not a "
             "valid label key: at most 63 characters, alphanumeric, '-', '_' or '.', starting "
             "and ending alphanumeric"),
    "selector label value": ("""\
        kind: ValidationPolicy
        metadata: {name: spark}
        spec:
          match:
            podTypes: [other]
            labelSelector:
              matchExpressions: [{key: spark-role, operator: In, values: ["driver pod"]}]
          podSecurity: {level: baseline}
        """, "p.yaml:8:67: document 1 (ValidationPolicy/spark): "
             "spec.match.labelSelector.matchExpressions[0].values[0]: bad value 'driver pod': "
             "is not a valid label value: at most 63 characters, alphanumeric, '-', '_' or '.', "
             "starting and ending alphanumeric"),
    "selector operator without values": ("""\
        kind: ValidationPolicy
        metadata: {name: spark}
        spec:
          match:
            podTypes: [other]
            labelSelector:
              matchExpressions: [{key: spark-role, operator: In}]
          podSecurity: {level: baseline}
        """, "p.yaml:8:26: document 1 (ValidationPolicy/spark): "
             "spec.match.labelSelector.matchExpressions[0]: operator In needs at least one "
             "value"),
    "enum value": ("""\
        kind: ValidationPolicy
        metadata: {name: v}
        spec: {mode: enforced}
        """, "p.yaml:4:14: document 1 (ValidationPolicy/v): spec.mode: bad value 'enforced': "
             "must be one of enforce, warn, audit; did you mean 'enforce'?"),
    "unknown policy field": ("""\
        kind: PodTemplate
        metadata: {name: t}
        spec:
          template: {}
          lockFields: [spec.hostNetwork]
        """, "p.yaml:6:3: document 1 (PodTemplate/t): spec.lockFields: bad value 'lockFields': "
             "is not a field here (fields: match, priority, template, lockedFields); did you "
             "mean 'lockedFields'?"),
    "key written twice": ("""\
        kind: PodTemplate
        metadata: {name: t}
        spec:
          template: {spec: {hostNetwork: false}}
          lockedFields: [spec.hostNetwork]
          lockedFields: []
        """, "p.yaml:7:3: document 1 (PodTemplate/t): spec.lockedFields: bad value "
             "'lockedFields': is written twice in one map; YAML would silently keep only the "
             "last"),
    "relative host path prefix": ("""\
        kind: ValidationPolicy
        metadata: {name: v}
        spec: {rules: {hostPaths: {allowedPrefixes: [data/airflow]}}}
        """, "p.yaml:4:46: document 1 (ValidationPolicy/v): spec.rules.hostPaths."
             "allowedPrefixes[0]: bad value 'data/airflow': must be an absolute path (it would "
             "never match a hostPath); did you mean '/data/airflow'?"),
    "service account": ("""\
        kind: ValidationPolicy
        metadata: {name: v}
        spec: {rules: {serviceAccounts: {allowed: ["airflow-*", "Airflow_Worker"]}}}
        """, "p.yaml:4:57: document 1 (ValidationPolicy/v): spec.rules.serviceAccounts.allowed[1]: "
             "bad value 'Airflow_Worker': is not a service account name (lowercase "
             "alphanumeric, '-' and '.')"),
    "namespace": ("""\
        kind: Exemption
        metadata: {name: e}
        spec: {reason: r, match: {namespaces: ["team-*", "Data Airflow"]}}
        """, "p.yaml:4:50: document 1 (Exemption/e): spec.match.namespaces[1]: bad value "
             "'Data Airflow': is not a namespace name (a DNS label: lowercase alphanumeric and "
             "'-', at most 63)"),
    "trusted creator namespace": ("""\
        kind: Settings
        metadata: {name: settings}
        spec:
          identity:
            trustedCreators:
              - namespaces: [data_airflow]
                usernames: [system:serviceaccount:airflow:airflow-scheduler]
        """, "p.yaml:7:22: document 1 (Settings/settings): "
             "spec.identity.trustedCreators[0].namespaces[0]: bad value 'data_airflow': is not "
             "a namespace name (a DNS label: lowercase alphanumeric and '-', at most 63)"),
    "airflow account": ("""\
        kind: Settings
        metadata: {name: settings}
        spec:
          identity:
            airflowAccounts: ["system:serviceaccount:airflow:airflow-[wd]*"]
        """, "p.yaml:6:23: document 1 (Settings/settings): spec.identity.airflowAccounts[0]: "
             "bad value 'system:serviceaccount:airflow:airflow-[wd]*': is not a username the "
             "hooks can select on (no brackets, spaces or control characters; globs are * "
             "and ?)"),
    "node pool label": ("""\
        kind: Settings
        metadata: {name: settings}
        spec: {nodePoolLabel: "node pool"}
        """, "p.yaml:4:23: document 1 (Settings/settings): spec.nodePoolLabel: bad value "
             "'node pool': is not a valid label key: at most 63 characters, alphanumeric, '-', "
             "'_' or '.', starting and ending alphanumeric"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_kind_of_typo_is_an_error_with_file_line_and_suggestion(tmp_path: Path,
                                                                     case: str) -> None:
    text, expected = CASES[case]
    assert expected in lint(tmp_path, text)


def test_a_yaml_syntax_error_is_one_line_with_file_line_and_column(tmp_path: Path) -> None:
    errors = lint(tmp_path, "kind: Profile\nmetadata: {name: x\nspec: {}\n")
    assert errors == ["p.yaml:4:5: YAML syntax error: did not find expected ',' or '}' "
                      "(while parsing a flow mapping at line 3, column 11)"]


@pytest.mark.parametrize("path", [
    "spec.containers[*].resources",
    "spec.containers[base].env",
    "spec.containers[*].resources.limits[nvidia.com/gpu]",
    "spec.containers[*].resources.limits.memory",
    "spec.securityContext.seccompProfile.type",
    "spec.nodeSelector",
    "spec.nodeSelector[cloud.google.com/gke-nodepool]",
    "metadata.labels",
    "metadata.labels.team",
    "metadata.annotations[example.com/owner]",
    "spec.tolerations",
    "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution",
    "spec.volumes[*].hostPath.path",
])
def test_valid_field_paths_pass(path: str) -> None:
    assert check_field_path(path) is None


@pytest.mark.parametrize("name", ["cpu", "memory", "ephemeral-storage", "hugepages-2Mi",
                                  "hugepages-1Gi", "nvidia.com/gpu", "amd.com/gpu",
                                  "example.com/foo_bar", "nvidia/gpu"])
def test_kubernetes_resource_names_pass(name: str) -> None:
    assert check_resource_name(name) is None


# (checker, bad name, the first suggestion or None): one table for every kind of name.
INVALID = [
    (check_field_path, "spec.containers[*].resources.limits.memroy",
     "spec.containers[*].resources.limits.memory"),
    (check_field_path, "spec.containers[*].resources.limit",
     "spec.containers[*].resources.limits"),
    (check_field_path, "spec.hostNetwork.enabled", None),
    (check_field_path, "spec.nodeSelector.pool.zone", None),
    (check_field_path, "spec.hostNetwork[0]", None),
    (check_field_path, "spec..containers", "spec.containers"),
    (check_field_path, "[base].image", None),
    (check_resource_name, "cpuu", "cpu"),
    (check_resource_name, "memroy", "memory"),
    (check_resource_name, "Memory", "memory"),
    (check_resource_name, "ephemeral_storage", "ephemeral-storage"),
    (check_resource_name, "gpu", "nvidia.com/gpu"),
    (check_resource_name, "hugepages-", None),
    (check_resource_name, "hugepages-lots", None),
    (check_resource_name, "hugepages-0", None),
    (check_resource_name, "kubernetes.io/gpu", None),
    (check_resource_name, "Nvidia.com/gpu", None),
    (check_resource_name, "nvidia.com/", None),
    (check_resource_name, "", None),
    (check_rule_name, "baseline: hostPathVolume", "baseline: hostPathVolumes"),
    (check_rule_name, "restricted: hostPathVolumes", "baseline: hostPathVolumes"),
    (check_rule_name, "basline", "baseline"),
    (check_rule_name, "airflow: image", "airflow: images"),
    (check_rule_name, "airflow: imagez*", None),
    (check_rule_name, "identity: trustedCreators", None),
    (check_rule_name, "airflow: podIdentity", None),
    (check_rule_name, "psa: privileged", "baseline: privileged"),
    (check_rule_name, "envelope: placment", "envelope: placement"),
    (check_rule_name, "restricted: resources", "airflow: resources"),
    (check_rule_name, "", None),
]


@pytest.mark.parametrize(("check", "name", "suggestion"), INVALID,
                         ids=[f"{c.__name__}-{n}" for c, n, _ in INVALID])
def test_invalid_names_fail_with_the_closest_valid_name(check, name: str,
                                                        suggestion: str | None) -> None:
    problem = check(name)
    assert problem is not None
    assert problem.suggestions[:1] == ((suggestion,) if suggestion else ())


def test_every_registered_rule_name_is_a_valid_exemption_entry() -> None:
    # Independent oracle: the Pod Security registry itself, and the violations' own names.
    expected = {f"{c.level}: {c.id}" for c in CHECKS}
    assert expected <= set(rule_names())
    for name in rule_names():
        if not name.startswith("identity:"):
            assert check_rule_name(name) is None, name
    for entry in ("*", "baseline", "restricted", "airflow", "airflow: *", "baseline:privileged",
                  "restricted : capabilities_*"):
        assert check_rule_name(entry) is None, entry


def test_a_new_rule_family_is_known_once_it_has_rows_in_the_rule_table(monkeypatch) -> None:
    # The linter has no registry of its own: a family and its rules are rows of webhook/rules.py.
    monkeypatch.setitem(FAMILIES, "example", Family("example", "example rules"))
    monkeypatch.setitem(RULES, "example: one", Rule("example: one", "webhook.example"))
    assert check_rule_name("example: one") is None
    assert check_rule_name("example: on").suggestions == ("example: one",)
    monkeypatch.delitem(RULES, "example: one")
    monkeypatch.setitem(RULES, "example: two", Rule("example: two", "webhook.example"))
    assert check_rule_name("example: two") is None
    assert check_rule_name("example: one") is not None  # a row gone is a name gone


def test_the_exemption_rule_actually_waives_what_the_linter_accepts(bundled) -> None:
    # The linter and the validating hook agree on what an entry names (one normalisation).
    from webhook.validation.validate import exemption_covers

    for entry in ("baseline : hostPathVolumes", "baseline:hostPathVolumes"):
        assert check_rule_name(entry) is None
        assert exemption_covers(entry, "baseline: hostPathVolumes")


@pytest.mark.parametrize(("path", "reason"), [
    ("spek.containers", "a Pod has no field 'spek'"),
    ("spec.containers[base].image.tag",
     "spec.containers[base].image is a string: it has no field 'tag'"),
    ("spec.hostNetwork[0]", "spec.hostNetwork is not a list or a map: [0] selects nothing"),
    ("metadata.labels.team.name", "metadata.labels.team is a string: it has no field 'name'"),
])
def test_field_path_reasons_say_where_the_path_stops_making_sense(path: str,
                                                                  reason: str) -> None:
    problem = check_field_path(path)
    assert problem is not None and problem.reason == reason


def test_a_yaml_merge_key_overridden_in_place_is_not_a_duplicate(tmp_path: Path) -> None:
    # `<<: *base` then `name: other` is how YAML reuses a block; construction flattens the
    # merge into the map, so keys are compared as written, before that.
    (tmp_path / "p.yaml").write_text(HEADER + textwrap.dedent("""\
        kind: Profile
        metadata: {name: small}
        spec:
          template:
            spec:
              containers:
                - &base {name: base, resources: {requests: {cpu: 250m}}}
                - <<: *base
                  name: other
                  image: busybox:1.37
        """))
    result = load_policy_dir(tmp_path)
    assert result.errors == ()
    containers = result.policy_set.profiles["small"].template["spec"]["containers"]
    assert [c["name"] for c in containers] == ["base", "other"]
