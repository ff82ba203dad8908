"""PolicyStore hot reload on the folder layouts Kubernetes really produces: a ConfigMap volume
(files are symlinks into `..data`, swapped atomically) and a git-sync checkout (the whole
folder is a symlink, swapped atomically). A broken push keeps the last good set."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.paths import POLICIES
from tests.support.policy_folders import BAD_SCHEMA, BAD_YAML, SET_A, SET_B, VARIANT
from tests.support.server_process import ConfigMapFolder, GitSyncFolder
from webhook.policy import store as store_module
from webhook.policy.load import LoadResult, load_policy_dir
from webhook.policy.store import PolicyStore


def revision(files: dict[str, bytes], tmp: Path) -> str:
    folder = tmp / f"rev-{len(list(tmp.iterdir()))}"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    result = load_policy_dir(folder)
    assert result.policy_set is not None, result.errors
    return result.revision


@pytest.fixture
def revisions(tmp_path: Path) -> dict[str, str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return {"A": revision(SET_A, scratch), "B": revision(SET_B, scratch)}


def test_configmap_swap_is_picked_up_and_hidden_entries_are_ignored(
        tmp_path: Path, revisions: dict[str, str]) -> None:
    mount = ConfigMapFolder(tmp_path / "policies")
    mount.write(SET_A)
    assert (mount.root / "..data").is_symlink() and (mount.root / "00-settings.yaml").is_symlink()
    store = PolicyStore(mount.root)
    assert store.reload_if_changed() and store.current.revision == revisions["A"]
    assert not store.reload_if_changed()  # nothing moved

    mount.write(SET_B)  # adds a key: a new top-level symlink
    assert store.reload_if_changed() and store.current.revision == revisions["B"]
    mount.write(SET_A)  # removes it again
    assert store.reload_if_changed() and store.current.revision == revisions["A"]
    assert not any(p.name.startswith("..2") for p in store_module.policy_files(mount.root))


def test_git_sync_swap_of_the_whole_folder_is_picked_up(
        tmp_path: Path, revisions: dict[str, str]) -> None:
    checkout = GitSyncFolder(tmp_path / "git")
    checkout.write(SET_A)
    store = PolicyStore(checkout.link)
    assert store.reload_if_changed() and store.current.revision == revisions["A"]
    checkout.write(SET_B)
    assert store.reload_if_changed() and store.current.revision == revisions["B"]


@pytest.mark.parametrize("broken", [BAD_YAML, BAD_SCHEMA], ids=["bad-yaml", "schema-error"])
def test_broken_push_keeps_the_last_good_set_reports_it_and_recovers(
        tmp_path: Path, revisions: dict[str, str], broken: dict[str, bytes]) -> None:
    mount = ConfigMapFolder(tmp_path / "policies")
    mount.write(SET_A)
    seen: list[LoadResult] = []
    store = PolicyStore(mount.root, on_reload=seen.append)
    store.reload_if_changed()

    mount.write(broken)
    assert not store.reload_if_changed()
    state = store.state
    assert state.policy_set.revision == revisions["A"]
    assert state.failed_revision and state.failed_revision != revisions["A"]
    assert state.errors and all("15-variant.yaml" in str(e) for e in state.errors)
    assert seen[-1].policy_set is None and seen[-1].errors == state.errors

    mount.write(SET_B)
    assert store.reload_if_changed()
    assert store.state.policy_set.revision == revisions["B"]
    assert store.state.errors == () and store.state.failed_revision == ""
    assert [r.policy_set is not None for r in seen] == [True, False, True]


def test_a_swap_in_the_middle_of_a_read_never_serves_a_mixed_set(
        tmp_path: Path, revisions: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder flips to B while the store reads A: the read is repeated, so the store
    serves B, never whatever mix the interrupted read saw."""
    mount = ConfigMapFolder(tmp_path / "policies")
    mount.write(SET_A)
    store = PolicyStore(mount.root)
    store.reload_if_changed()
    real_load, calls = store_module.load_policy_dir, []

    def load_then_swap(folder: Path) -> LoadResult:
        calls.append(folder)
        result = real_load(folder)
        if len(calls) == 1:
            mount.write(SET_B)  # lands after the read: what was read is already stale
        return result

    mount.write({**SET_A, "15-variant.yaml": VARIANT.replace(b"b\n", b"c\n")})
    monkeypatch.setattr(store_module, "load_policy_dir", load_then_swap)
    assert store.reload_if_changed()
    assert len(calls) == 2
    assert store.current.revision == revisions["B"]


def test_a_folder_that_never_holds_still_is_retried_on_the_next_tick(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mount = ConfigMapFolder(tmp_path / "policies")
    mount.write(SET_A)
    store = PolicyStore(mount.root)
    real_load = store_module.load_policy_dir

    def load_and_keep_swapping(folder: Path) -> LoadResult:
        result = real_load(folder)
        mount.write(SET_B if mount.generation % 2 else SET_A)
        return result

    monkeypatch.setattr(store_module, "load_policy_dir", load_and_keep_swapping)
    assert not store.reload_if_changed() and store.current is None
    monkeypatch.setattr(store_module, "load_policy_dir", real_load)
    assert store.reload_if_changed() and store.current is not None


def test_a_failing_observer_does_not_stop_loading(tmp_path: Path) -> None:
    def explode(result: LoadResult) -> None:
        raise RuntimeError("metrics are down")

    store = PolicyStore(POLICIES, on_reload=explode)
    assert store.reload_if_changed() and store.current is not None


def test_watcher_thread_follows_configmap_swaps(tmp_path: Path,
                                                revisions: dict[str, str]) -> None:
    mount = ConfigMapFolder(tmp_path / "policies")
    mount.write(SET_A)
    store = PolicyStore(mount.root, interval=0.02)
    store.reload_if_changed()
    store.watch()
    try:
        mount.write(SET_B)
        deadline = time.monotonic() + 5
        while store.current.revision != revisions["B"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.current.revision == revisions["B"]
    finally:
        store.stop()
