"""llmpack download against a hostile or failing --local-dir: links planted anywhere in it are reported,
never followed; a read-only or forbidden directory and a full volume are one line and their exit code, with
nothing corrupt left in place; space is reserved so two downloaders into one volume cannot both start."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.download.conftest import (
    EITHER_WAY,
    assert_complete,
    download,
    downloader,
    end,
    env_for,
    files_of,
    regular_files,
    the_error,
)
from tests.hub.server import HubServer, Repo, commit_id, synthetic_repo

WEIGHTS = "sub/weights.safetensors"


def nested_repo() -> Repo:
    """config.json and a 2 MiB LFS file in a subdirectory."""
    files = {"config.json": b'{"model_type": "llama"}', WEIGHTS: hashlib.sha256(b"w").digest() * (1 << 16)}
    commit = commit_id("org/nested")
    return Repo("org/nested", {commit: files}, {"main": commit})


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("planted", [
    "sub",                                       # a parent directory of a listed file
    ".llmpack",                                  # our state directory
    ".llmpack/partial",
    ".llmpack/partial/sub",
    f".llmpack/partial/{WEIGHTS}.part",          # a partial file
    "config.json",                               # a target itself
    ".llmpack/lock",
    ".llmpack/complete.json",                    # the record the fast path reads
])
@EITHER_WAY
def test_a_symbolic_link_planted_anywhere_in_the_directory_is_reported_and_never_followed(
        hub: HubServer, tmp_path: Path, planted: str, way: tuple[str, ...]) -> None:
    hub.repos["org/nested"] = nested_repo()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"precious")
    before = snapshot(outside)
    target = tmp_path / "cache"
    link = target / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    is_dir = planted in ("sub", ".llmpack", ".llmpack/partial", ".llmpack/partial/sub", ".llmpack/lock")
    link.symlink_to(outside if is_dir else outside / "victim")
    result = download(hub, tmp_path, "org/nested", "--local-dir", str(target), *way)
    assert result.returncode == 10, result.stderr
    line = the_error(result)
    assert f"{target / planted} is a symbolic link" in line
    assert snapshot(outside) == before  # nothing written through the link, nothing truncated
    assert link.is_symlink()


@EITHER_WAY
def test_a_fifo_planted_as_a_partial_file_is_refused_without_hanging(hub: HubServer, tmp_path: Path,
                                                                     way: tuple[str, ...]) -> None:
    target = tmp_path / "cache"
    shard = "model-00001-of-00003.safetensors"
    (target / ".llmpack" / "partial").mkdir(parents=True)
    os.mkfifo(target / ".llmpack" / "partial" / f"{shard}.part")
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", shard, *way)
    assert result.returncode == 10, result.stderr
    assert "is a special file" in the_error(result)


def test_a_read_only_directory_is_one_line_and_a_complete_one_still_serves(
        hub: HubServer, tmp_path: Path, tmpfs: Callable[[str, str], Path]) -> None:
    volume = tmpfs("ro", "size=32m")
    complete, empty = volume / "complete", volume / "empty"
    assert download(hub, tmp_path, "org/model", "--local-dir", str(complete), "--revision", "v1").returncode == 0
    empty.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)

    warm = download(hub, tmp_path, "org/model", "--local-dir", str(complete), "--revision", "v1")
    assert warm.returncode == 0, warm.stderr  # vLLM's pods may mount the cache read-only
    for target, args in ((empty, ()), (complete, ("--revision", "v2")), (volume / "new" / "dir", ())):
        result = download(hub, tmp_path, "org/model", "--local-dir", str(target), *args)
        assert result.returncode == 10, result.stderr
        assert "read-only" in the_error(result)
    assert_complete(complete, files_of(hub, ref="v1"))  # the old revision is untouched


def _without_dac_override() -> None:
    """Run the child as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH: file modes then apply to it,
    as they do to the downloader's non-root user in a pod."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_permission_denied_is_one_line_naming_the_directory(hub: HubServer, tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.mkdir(mode=0o555)
    target.chmod(0o555)
    result = subprocess.run([sys.executable, "-m", "llmpack.cli", "download", "org/model", "--local-dir", str(target)],
                            env=env_for(hub, tmp_path), capture_output=True, text=True, timeout=60, check=False,
                            preexec_fn=_without_dac_override)
    assert result.returncode == 10, result.stderr
    line = the_error(result)
    assert "permission denied" in line
    assert str(target) in line
    assert list(target.iterdir()) == []


def written(partial: Path) -> int:
    """Bytes in the parts now; a small file's part is renamed into place between the listing and its stat."""
    total = 0
    for part in partial.glob("*.part"):
        with contextlib.suppress(FileNotFoundError):
            total += part.stat().st_size
    return total


def fill(path: Path) -> None:
    """Take every free block of the volume, as another writer would."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * (64 << 10))
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


@EITHER_WAY
def test_a_volume_that_fills_up_mid_download_is_exit_6_and_the_next_run_resumes(
        hub: HubServer, tmp_path: Path, tmpfs: Callable[[str, str], Path], way: tuple[str, ...]) -> None:
    volume = tmpfs("small", "size=16m")
    target = volume / "cache"
    hub.faults.rate = 4 << 20
    # Without the reservation (what a filesystem lacking fallocate gives us), something else fills the disk.
    proc = downloader(hub, tmp_path, "org/model", "--local-dir", str(target), *way, LLMPACK_PREALLOCATE="0")
    partial = target / ".llmpack" / "partial"
    filler = volume / "filler"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and written(partial) < 1 << 20:
            time.sleep(0.02)
        fill(filler)
        code = proc.wait(60)
    finally:
        end(proc)
    result = subprocess.CompletedProcess(proc.args, code, "", proc.stderr.read() if proc.stderr else "")
    assert code == 6, result.stderr
    line = the_error(result)
    assert "filled up" in line
    assert "spec.model.storage.size" in line
    assert not (target / ".llmpack" / "complete.json").exists()
    expected = files_of(hub)
    for path in (p for p in expected if (target / p).exists()):  # only verified files are ever in place
        assert (target / path).read_bytes() == expected[path]

    filler.unlink()
    hub.faults.rate = None
    hub.served.clear()
    resumed = download(hub, tmp_path, "org/model", "--local-dir", str(target), *way)
    assert resumed.returncode == 0, resumed.stderr
    assert_complete(target, expected)
    assert sum(hub.served.values()) < sum(len(d) for d in expected.values())  # what was written was kept


@EITHER_WAY
def test_two_downloaders_into_one_small_volume_cannot_both_start(hub: HubServer, tmp_path: Path,
                                                                 tmpfs: Callable[[str, str], Path],
                                                                 way: tuple[str, ...]) -> None:
    hub.repos["org/a"] = synthetic_repo("org/a", shards=3, shard_size=4 << 20)
    hub.repos["org/b"] = synthetic_repo("org/b", shards=3, shard_size=4 << 20)
    volume = tmpfs("shared", "size=20m")  # room for one 12 MiB model, not two
    hub.faults.rate = 8 << 20
    procs = {repo: downloader(hub, tmp_path, repo, "--local-dir", str(volume / repo.replace("/", "-")), *way)
             for repo in ("org/a", "org/b")}
    try:
        results = {repo: subprocess.CompletedProcess(p.args, p.wait(60), "", p.stderr.read() if p.stderr else "")
                   for repo, p in procs.items()}
    finally:
        end(*procs.values())
    assert sorted(r.returncode for r in results.values()) == [0, 6], {k: r.stderr for k, r in results.items()}
    (winner,) = [repo for repo, r in results.items() if r.returncode == 0]
    (loser,) = [repo for repo, r in results.items() if r.returncode == 6]
    assert "not enough space" in the_error(results[loser])
    assert not any(key.startswith(loser) for key in hub.served)  # refused before its first byte
    assert regular_files(volume / loser.replace("/", "-")) == []
    assert_complete(volume / winner.replace("/", "-"), files_of(hub, winner))
