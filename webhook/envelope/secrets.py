"""envelope: secrets — which Secrets a pod may reference, by every route.

A pod reaches a Secret through a `secret` volume, a `projected` volume's secret source, a CSI
volume's nodePublishSecretRef, a container's `env[].valueFrom.secretKeyRef` or
`envFrom[].secretRef`, and `imagePullSecrets`. Each reference must name a Secret the section
allows (`allowed`, `forbidden` winning: Airflow's own Secrets, the metadata connection, the
Fernet key, the JWT and API secrets), unless the admin's pod_template_file itself uses that
Secret there (`templateUses`: for these pod types, in these containers' env variables or these
volumes). An override annotation never adds a reference to any Secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase

from webhook.envelope.context import EnvelopeContext
from webhook.envelope.rule_names import SECRETS
from webhook.pod.reading import containers, list_at, map_at, spec_of, str_at
from webhook.policy.model import Envelope, SecretRules, SecretUse
from webhook.violations import Violation, violation


@dataclass(frozen=True)
class SecretReference:
    path: str  # the field naming the Secret
    secret: str
    container: str = ""  # the container's name, for env routes
    env: str = ""  # the env variable's name, for secretKeyRef
    volume: str = ""  # the volume's name, for volume routes


def _volume_references(pod: dict) -> Iterator[SecretReference]:
    for index, volume in enumerate(list_at(spec_of(pod), "volumes")):
        name = str_at(volume, "name")
        where = f"spec.volumes[{name or index}]"
        secret = map_at(volume, "secret")
        if "secretName" in secret:
            yield SecretReference(f"{where}.secret.secretName", str_at(secret, "secretName"),
                                  volume=name)
        for j, source in enumerate(list_at(map_at(volume, "projected"), "sources")):
            projected = map_at(source, "secret")
            if "name" in projected:
                yield SecretReference(f"{where}.projected.sources[{j}].secret.name",
                                      str_at(projected, "name"), volume=name)
        publish = map_at(map_at(volume, "csi"), "nodePublishSecretRef")
        if "name" in publish:
            yield SecretReference(f"{where}.csi.nodePublishSecretRef.name",
                                  str_at(publish, "name"), volume=name)


def _container_references(pod: dict) -> Iterator[SecretReference]:
    for container in containers(pod):
        name = str_at(container.fields, "name")
        for index, env in enumerate(list_at(container.fields, "env")):
            key_ref = map_at(map_at(env, "valueFrom"), "secretKeyRef")
            if "name" in key_ref:
                variable = str_at(env, "name")
                yield SecretReference(
                    f"{container.path}.env[{variable or index}].valueFrom.secretKeyRef.name",
                    str_at(key_ref, "name"), container=name, env=variable)
        for index, source in enumerate(list_at(container.fields, "envFrom")):
            ref = map_at(source, "secretRef")
            if "name" in ref:
                # no env variable: never one a template use names
                yield SecretReference(f"{container.path}.envFrom[{index}].secretRef.name",
                                      str_at(ref, "name"))


def secret_references(pod: dict) -> list[SecretReference]:
    """Every reference the pod makes to a Secret, by every route, in the pod's order."""
    pulls = [SecretReference(f"spec.imagePullSecrets[{index}].name", str_at(entry, "name"))
             for index, entry in enumerate(list_at(spec_of(pod), "imagePullSecrets"))
             if isinstance(entry, dict) and "name" in entry]
    return [*_volume_references(pod), *_container_references(pod), *pulls]


def _template_uses(ref: SecretReference, use: SecretUse, ctx: EnvelopeContext) -> bool:
    if ctx.pod_type not in use.pod_types or not fnmatchcase(ref.secret, use.secret):
        return False
    if ref.volume:
        return ref.volume in use.volumes
    return bool(ref.env) and ref.container in use.containers and ref.env in use.env


def _allowed(ref: SecretReference, rules: SecretRules, ctx: EnvelopeContext) -> bool:
    return rules.names.admits(ref.secret) or any(
        _template_uses(ref, use, ctx) for use in rules.template_uses)


def check_secrets(pod: dict, envelope: Envelope, ctx: EnvelopeContext) -> list[Violation]:
    rules = envelope.secrets
    if rules is None:
        return []
    found = []
    for ref in secret_references(pod):
        if ctx.fragment:
            found.append(violation(ref.path, "must not be set: an override annotation never "
                                   f"adds a reference to a Secret (Envelope/{envelope.name} "
                                   "secrets)", ref.secret, SECRETS))
        elif not _allowed(ref, rules, ctx):
            forbidden = [p for p in rules.names.forbidden if fnmatchcase(ref.secret, p)]
            why = (f"must not name one of Airflow's own Secrets ({', '.join(forbidden)})"
                   if forbidden else "must name an allowed Secret "
                   f"({', '.join(rules.names.allowed) or 'none'})")
            found.append(violation(ref.path, f"{why} (Envelope/{envelope.name} secrets)",
                                   ref.secret, SECRETS))
    return found
