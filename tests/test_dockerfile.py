"""Static lint of the Dockerfile (CI has no Docker engine): non-root, read-only-safe, small."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

import pytest
import yaml

from tests.support.paths import ROOT as REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEPLOYMENT = REPO / "deploy" / "base" / "deployment.yaml"
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|clang|make|build-essential|apt-get|apk|yum|dnf|pip3? (install|wheel)|"
    r"python -m (pip|build))\b"
)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [value for kw, value in self.instructions if kw == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) of a Dockerfile; continuation lines joined, comments gone."""
    logical: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, even inside a continuation
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    assert not buffer, "dangling line continuation"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            words = value.split()
            words = [w for w in words if not w.startswith("--platform")]
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m[1] or m[2]], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages:
            assert keyword == "ARG", f"only ARG may precede FROM, got {keyword}"
            arg, _, default = value.partition("=")
            global_args[arg] = default
        else:
            stages[-1].instructions.append((keyword, value))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in stage.args("ENV"):
        for word in shlex.split(value):
            key, _, val = word.partition("=")
            env[key] = val
    return env


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)  # shell form would hide signals from gunicorn behind /bin/sh
    assert isinstance(parsed, list)
    return parsed


def cmd_flags(stage: Stage) -> dict[str, str]:
    cmd = exec_form(stage.args("CMD")[-1])
    assert len(cmd) % 2 == 0, f"CMD must be --flag value pairs: {cmd}"
    return dict(zip(cmd[::2], cmd[1::2], strict=True))


def deployment_container() -> tuple[dict, dict]:
    deployment = yaml.safe_load(DEPLOYMENT.read_text())
    spec = deployment["spec"]["template"]["spec"]
    return spec, spec["containers"][0]


def test_multi_stage_on_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert stages[0].name == "builder"
    for stage in stages:
        assert stage.base == "python:3.11-slim", "same base: the venv symlinks its interpreter"


def test_builder_builds_a_wheel_into_a_venv(stages: list[Stage]) -> None:
    run = " ".join(stages[0].args("RUN"))
    assert "wheel" in run
    assert "python -m venv /opt/venv" in run
    # With the server extra: the package alone is the light DAG-author install (no flask).
    assert '/opt/venv/bin/pip install "$(echo /wheels/*.whl)[server]"' in run


def test_final_stage_has_no_build_tools(final: Stage) -> None:
    for run in final.args("RUN"):
        assert not BUILD_TOOLS.search(run), run
    copies_from = [c for c in final.args("COPY") if c.startswith("--from=")]
    assert copies_from == ["--from=builder /opt/venv /opt/venv"]
    assert not final.args("ADD")


def test_user_is_numeric_non_root_and_matches_deployment(final: Stage) -> None:
    users = final.args("USER")
    assert users, "final stage must set USER"
    user = users[-1]
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER must be numeric for runAsNonRoot: {user}"
    uid, _, gid = user.partition(":")
    assert int(uid) != 0 and (not gid or int(gid) != 0)
    # USER must come after every RUN so nothing runs as root at start-up.
    keywords = [kw for kw, _ in final.instructions]
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw == "RUN")
    pod, container = deployment_container()
    assert container["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["runAsUser"] == int(uid)


def test_entrypoint_and_default_flags(final: Stage) -> None:
    assert exec_form(final.args("ENTRYPOINT")[-1]) == ["airflow-pod-webhook", "serve"]
    flags = cmd_flags(final)
    assert flags["--policies"] == "/etc/airflow-pod-webhook/policies"
    assert flags["--cert-dir"] == "/etc/airflow-pod-webhook/cluster/certs"
    assert flags["--port"] == "8443"
    assert final.args("EXPOSE") == ["8443"]


def test_deployment_flags_agree_with_image_defaults(final: Stage) -> None:
    image_flags = cmd_flags(final)
    _, container = deployment_container()
    deploy_flags = dict(arg.split("=", 1) for arg in container["args"])
    for flag in ("--policies", "--cert-dir", "--port"):
        assert deploy_flags[flag] == image_flags[flag]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {deploy_flags["--policies"], deploy_flags["--cert-dir"], "/tmp"} <= mounts


def test_read_only_root_filesystem_friendly(final: Stage) -> None:
    env = env_of(final)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    for key in ("PROMETHEUS_MULTIPROC_DIR", "TMPDIR", "HOME"):
        assert env[key].startswith("/tmp"), f"{key} must live under /tmp (the only writable mount)"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_dockerignore_is_an_allow_list(stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "exclude everything, then allow what the build copies"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed <= {"pyproject.toml", "README.md", "LICENSE", "webhook", "policies"}
    assert "certs" not in allowed  # private keys must never reach the build context
    for stage in stages:
        for copy in stage.args("COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _dest = copy.split()
            for source in sources:
                assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"


def test_copied_sources_exist() -> None:
    for path in ("pyproject.toml", "LICENSE", "webhook", "policies"):
        assert (REPO / path).exists(), path
    # README.md is copied because pyproject.toml names it as the package readme.
    assert 'readme = "README.md"' in (REPO / "pyproject.toml").read_text()
