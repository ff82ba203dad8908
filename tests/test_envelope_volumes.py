"""envelope: volumes — a DAG author mounts only the volume types, claims, storage classes and
CSI drivers the admin lists, read-only where the admin says, within the storage bounds."""

from __future__ import annotations

from tests.support.pods import airflow_pod
from tests.support.policies import bundled_envelope_messages, policy_set
from webhook.airflow_pods import PodType
from webhook.envelope.registry import check_fragment, check_pod

RULE = "envelope: volumes"
NOTE = "(Envelope/airflow volumes"


def kpo_with(*volumes: dict, mounts: tuple[dict, ...] = ()) -> dict:
    pod = airflow_pod("airflow3-kpo")
    pod["spec"]["volumes"] += list(volumes)
    pod["spec"]["containers"][0]["volumeMounts"] += list(mounts)
    return pod


def test_stock_volumes_pass():
    for fixture, pod_type in (("airflow3-kpo-xcom", "kpo"), ("airflow2-executor", "executor")):
        assert bundled_envelope_messages(airflow_pod(fixture), pod_type, RULE) == []


def test_the_dags_claim_mounts_only_read_only():
    dags = {"name": "dags", "persistentVolumeClaim": {"claimName": "airflow-dags"}}
    pod = kpo_with(dags, mounts=({"name": "dags", "mountPath": "/dags"},))
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        "spec.containers[base].volumeMounts[/dags].readOnly must be true: claim airflow-dags "
        f"mounts read-only {NOTE}.persistentVolumeClaims), got <unset> (envelope: volumes)"]
    pod["spec"]["containers"][0]["volumeMounts"][-1]["readOnly"] = True
    assert bundled_envelope_messages(pod, "kpo", RULE) == []
    pod["spec"]["containers"][0]["volumeMounts"][-1]["readOnly"] = False
    pod["spec"]["volumes"][-1]["persistentVolumeClaim"]["readOnly"] = True
    assert bundled_envelope_messages(pod, "kpo", RULE) == []


def test_an_unlisted_claim_is_refused_and_the_logs_claim_may_be_written():
    pod = kpo_with({"name": "o", "persistentVolumeClaim": {"claimName": "team-b-data"}},
                   {"name": "l", "persistentVolumeClaim": {"claimName": "airflow-logs"}},
                   mounts=({"name": "l", "mountPath": "/logs"},))
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        "spec.volumes[o].persistentVolumeClaim.claimName must name an allowed claim "
        f"(airflow-dags (read-only), airflow-logs) {NOTE}.persistentVolumeClaims), got "
        '"team-b-data" (envelope: volumes)']


def test_an_ephemeral_clone_of_the_dags_claim_in_any_class_at_64ti_is_refused():
    pod = kpo_with({"name": "clone", "ephemeral": {"volumeClaimTemplate": {"spec": {
        "storageClassName": "premium",
        "dataSource": {"kind": "PersistentVolumeClaim", "name": "airflow-dags"},
        "resources": {"requests": {"storage": "64Ti"}}}}}})
    where = "spec.volumes[clone].ephemeral.volumeClaimTemplate.spec"
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        f"{where}.dataSource must not be set: a clone copies another claim's data "
        f'{NOTE}.ephemeral), got {{"kind":"PersistentVolumeClaim","name":"airflow-dags"}} '
        "(envelope: volumes)",
        f"{where}.resources.requests.storage must be at most 100Gi {NOTE}.ephemeral), got "
        '"64Ti" (envelope: volumes)',
        f"{where}.storageClassName must be an allowed storage class (standard, standard-rwo, "
        f'gp2, gp3) {NOTE}.ephemeral), got "premium" (envelope: volumes)']
    small = kpo_with({"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
        "resources": {"requests": {"storage": "100Gi"}}}}}})
    assert bundled_envelope_messages(small, "kpo", RULE) == []


def test_an_ephemeral_claim_bound_to_an_existing_volume_is_refused():
    # volumeName (or a selector) binds a pre-made PersistentVolume, with the data another
    # claim wrote there, instead of a fresh one from the storage class.
    pod = kpo_with({"name": "old", "ephemeral": {"volumeClaimTemplate": {"spec": {
        "volumeName": "pv-team-b", "selector": {"matchLabels": {"team": "b"}},
        "resources": {"requests": {"storage": "1Gi"}}}}}})
    where = "spec.volumes[old].ephemeral.volumeClaimTemplate.spec"
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        f"{where}.selector must not be set: it binds an existing volume, with the data "
        f'another claim left on it {NOTE}.ephemeral), got {{"matchLabels":{{"team":"b"}}}} '
        "(envelope: volumes)",
        f"{where}.volumeName must not be set: it binds an existing volume, with the data "
        f'another claim left on it {NOTE}.ephemeral), got "pv-team-b" (envelope: volumes)']


def test_csi_drivers_and_volume_types_are_allowlists():
    pod = kpo_with({"name": "c", "csi": {"driver": "evil.example.com"}},
                   {"name": "s", "csi": {"driver": "secrets-store.csi.k8s.io"}},
                   {"name": "n", "nfs": {"server": "x", "path": "/"}},
                   {"name": "h", "hostPath": {"path": "/tmp"}})  # Pod Security's to judge
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        "spec.volumes[c].csi.driver must be an allowed CSI driver (secrets-store.csi.k8s.io) "
        f'{NOTE}.csi), got "evil.example.com" (envelope: volumes)',
        "spec.volumes[n].nfs must be an allowed volume type (emptyDir, configMap, secret, "
        "projected, downwardAPI, persistentVolumeClaim, ephemeral, csi) "
        f'{NOTE}.types), got {{"path":"/","server":"x"}} (envelope: volumes)']


def test_empty_dirs_are_bounded_one_by_one_and_memory_ones_must_say_how_big():
    pod = kpo_with({"name": "shm", "emptyDir": {"medium": "Memory"}},
                   {"name": "big", "emptyDir": {"sizeLimit": "65Gi"}},
                   {"name": "ok", "emptyDir": {"sizeLimit": "50Gi"}},
                   {"name": "bad", "emptyDir": {"sizeLimit": "lots"}})
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        'spec.volumes[bad].emptyDir.sizeLimit must be at most 64Gi (Envelope/airflow '
        'volumes.emptyDir), got "lots" (envelope: volumes)',
        'spec.volumes[big].emptyDir.sizeLimit must be at most 64Gi (Envelope/airflow '
        'volumes.emptyDir), got "65Gi" (envelope: volumes)',
        "spec.volumes[shm].emptyDir.sizeLimit must be set on a memory-backed emptyDir (a tmpfs "
        "grows to the node's memory) (Envelope/airflow volumes.emptyDir), got <unset> "
        "(envelope: volumes)"]


def test_empty_dir_totals_count_in_the_pods_limits():
    pod = kpo_with({"name": "a", "emptyDir": {"sizeLimit": "60Gi"}},
                   {"name": "b", "emptyDir": {"sizeLimit": "60Gi"}},
                   {"name": "c", "emptyDir": {"sizeLimit": "50Gi", "medium": "Memory"}},
                   {"name": "d", "emptyDir": {"sizeLimit": "40Gi", "medium": "Memory"}})
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        "spec.volumes must hold emptyDir sizeLimits totalling at most 80Gi of memory "
        '(Envelope/airflow perPod limits), got "90Gi" (envelope: volumes)']
    pod["spec"]["volumes"][-1]["emptyDir"]["sizeLimit"] = "30Gi"
    pod["spec"]["volumes"].append({"name": "e", "emptyDir": {"sizeLimit": "1"}})
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        "spec.volumes must hold emptyDir sizeLimits totalling at most 120Gi of "
        'ephemeral-storage (Envelope/airflow perPod limits), got "128849018881" '
        "(envelope: volumes)"]


def test_an_envelope_without_bounds_lists_none():
    envelope = policy_set("""
        apiVersion: airflow-pod-webhook.io/v1alpha1
        kind: Envelope
        metadata: {name: bare}
        spec: {volumes: {types: [emptyDir, ephemeral, persistentVolumeClaim, csi]}}
    """).envelopes[0]
    pod = kpo_with({"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {
        "storageClassName": "standard", "resources": {"requests": {"storage": "1Pi"}}}}}},
        {"name": "p", "persistentVolumeClaim": {"claimName": "x"}},
        {"name": "c", "csi": {"driver": "d"}}, {"name": "big", "emptyDir": {"sizeLimit": "1Pi"}})
    assert [v.message for v in check_pod(pod, envelope, "pool", (), PodType.KPO)] == [
        'spec.volumes[c].csi.driver must be an allowed CSI driver (none) (Envelope/bare '
        'volumes.csi), got "d" (envelope: volumes)',
        'spec.volumes[e].ephemeral.volumeClaimTemplate.spec.storageClassName must be an allowed '
        'storage class (none) (Envelope/bare volumes.ephemeral), got "standard" '
        '(envelope: volumes)',
        'spec.volumes[p].persistentVolumeClaim.claimName must name an allowed claim (none) '
        '(Envelope/bare volumes.persistentVolumeClaims), got "x" (envelope: volumes)']


def test_an_annotation_fragment_is_held_to_the_same_volume_rules(bundled):
    fragment = {"spec": {"volumes": [
        {"name": "d", "persistentVolumeClaim": {"claimName": "airflow-dags"}},
        {"name": "n", "nfs": {"server": "x", "path": "/"}}]}}
    assert [v.path for v in check_fragment(fragment, bundled.envelopes[0], "node-pool")] == [
        "spec.volumes[n].nfs"]


BARE = policy_set("""
    apiVersion: airflow-pod-webhook.io/v1alpha1
    kind: Envelope
    metadata: {name: bare}
    spec: {volumes: {types: [], csiDrivers: [a.example.com, b.example.com]}}
""").envelopes[0]


def bare_messages(pod: dict) -> list[str]:
    return [v.message for v in check_pod(pod, BARE, "pool", (), PodType.KPO)]


def test_no_type_allowed_says_none_and_every_driver_is_listed():
    pod = kpo_with({"name": "c", "csi": {"driver": "c.example.com"}})
    assert bare_messages(pod) == [
        'spec.volumes[c].csi must be an allowed volume type (none) (Envelope/bare '
        'volumes.types), got {"driver":"c.example.com"} (envelope: volumes)',
        'spec.volumes[c].csi.driver must be an allowed CSI driver (a.example.com, b.example.com) '
        '(Envelope/bare volumes.csi), got "c.example.com" (envelope: volumes)']


def test_without_a_maximum_a_size_limit_must_still_be_a_quantity():
    pod = kpo_with({"name": "n", "nfs": {"server": "x", "path": "/"}},
                   {"name": "e", "emptyDir": {"sizeLimit": "lots"}})
    assert [m for m in bare_messages(pod) if "emptyDir.sizeLimit" in m] == [
        'spec.volumes[e].emptyDir.sizeLimit must be a quantity (Envelope/bare '
        'volumes.emptyDir), got "lots" (envelope: volumes)']


def test_size_limits_of_zero_pass_and_negative_or_boolean_ones_do_not():
    pod = kpo_with({"name": "cm", "configMap": {"name": "c"}},
                   {"name": "zero", "emptyDir": {"sizeLimit": "0"}},
                   {"name": "neg", "emptyDir": {"sizeLimit": "-1Gi"}},
                   {"name": "yes", "emptyDir": {"sizeLimit": True}})
    assert [v.split(" must")[0] for v in bundled_envelope_messages(pod, "kpo", RULE)] == [
        "spec.volumes[neg].emptyDir.sizeLimit", "spec.volumes[yes].emptyDir.sizeLimit"]


def test_every_read_write_mount_of_a_read_only_claim_is_named_and_no_other():
    pod = kpo_with({"name": "scratch", "emptyDir": {}},
                   {"name": "dags", "persistentVolumeClaim": {"claimName": "airflow-dags"}},
                   mounts=({"name": "scratch", "mountPath": "/scratch"},
                           {"name": "dags", "mountPath": "/a", "readOnly": False},
                           {"name": "dags", "mountPath": "/b", "readOnly": True}))
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        "spec.containers[base].volumeMounts[/a].readOnly must be true: claim airflow-dags "
        "mounts read-only (Envelope/airflow volumes.persistentVolumeClaims), got false "
        "(envelope: volumes)"]


def test_a_clone_by_data_source_ref_is_refused_after_other_volumes():
    pod = kpo_with({"name": "cm", "configMap": {"name": "c"}},
                   {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {
                       "dataSourceRef": {"kind": "VolumeSnapshot", "name": "dags-snap"},
                       "resources": {"requests": {"storage": "1Gi"}}}}}})
    assert bundled_envelope_messages(pod, "kpo", RULE) == [
        "spec.volumes[e].ephemeral.volumeClaimTemplate.spec.dataSourceRef must not be set: a "
        "clone copies another claim's data (Envelope/airflow volumes.ephemeral), got "
        '{"kind":"VolumeSnapshot","name":"dags-snap"} (envelope: volumes)']
