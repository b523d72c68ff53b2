"""llmpack download against a Hub-compatible server: each byte once, resumed, verified, and clear failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.download.conftest import TOKEN, assert_complete, download, downloader, files_of, the_error
from tests.hub.server import HubServer


def test_download_verifies_every_file_and_a_rerun_takes_the_fast_path(hub: HubServer, tmp_path: Path) -> None:
    target = tmp_path / "cache"
    first = download(hub, tmp_path, "org/model", "--local-dir", str(target))
    assert first.returncode == 0, first.stderr
    assert_complete(target, files_of(hub))
    served = dict(hub.served)
    again = download(hub, tmp_path, "org/model", "--local-dir", str(target))
    assert again.returncode == 0, again.stderr
    last = json.loads(again.stderr.strip().splitlines()[-1])
    assert last["fast_path"] is True
    assert last["seconds"] < 2  # hashing nothing: well under a second; bench/download.py has the figure
    assert dict(hub.served) == served  # not one byte more


def test_three_concurrent_downloaders_fetch_each_byte_exactly_once(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.rate = 16 << 20  # slow enough that all three start while the first is still working
    target = tmp_path / "shared"
    procs = [downloader(hub, tmp_path, "org/model", "--local-dir", str(target)) for _ in range(3)]
    results = [(p.wait(120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0], results
    expected = files_of(hub)
    assert {k.split("/", 2)[2]: v for k, v in hub.served.items()} == {p: len(d) for p, d in expected.items()}
    assert_complete(target, expected)
    logs = "".join(err for _, err in results)
    assert '"phase": "waiting"' in logs  # the others said who held the work


def test_a_downloader_killed_halfway_resumes_and_refetches_at_most_one_chunk(hub: HubServer, tmp_path: Path) -> None:
    shard = "model-00001-of-00003.safetensors"
    size = len(files_of(hub)[shard])
    hub.faults.rate = 4 << 20
    target = tmp_path / "cache"
    proc = downloader(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", shard)
    part = target / ".llmpack" / "partial" / f"{shard}.part"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size >= size // 2):
        time.sleep(0.02)
    st = part.stat()
    assert st.st_blocks * 512 >= size > st.st_size  # its space is reserved; its length is only what was written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = part.stat().st_size
    assert size // 2 <= kept < size
    hub.faults.rate = None
    started = time.monotonic()
    resumed = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", shard)
    assert resumed.returncode == 0, resumed.stderr
    assert time.monotonic() - started < 10  # its dead predecessor's lock is taken at once, not after 30 s
    assert_complete(target, {shard: files_of(hub)[shard]})
    refetched = hub.served[f"org/model/{shard}"] - size
    assert refetched <= 1 << 20, f"re-fetched {refetched} bytes after the kill"


def test_a_dropped_connection_is_resumed_with_range(hub: HubServer, tmp_path: Path) -> None:
    shard = "model-00002-of-00003.safetensors"
    hub.faults.drop_after[shard] = 1 << 20
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"), "--include", shard)
    assert result.returncode == 0, result.stderr
    assert hub.served[f"org/model/{shard}"] == len(files_of(hub)[shard])  # nothing fetched twice


def test_corrupt_bytes_are_refetched_and_never_left_in_place(hub: HubServer, tmp_path: Path) -> None:
    shard = "model-00003-of-00003.safetensors"
    hub.faults.corrupt[shard] = 1
    target = tmp_path / "c"
    result = download(hub, tmp_path, "org/model", "--local-dir", str(target), "--include", shard)
    assert result.returncode == 0, result.stderr
    assert_complete(target, {shard: files_of(hub)[shard]})

    hub.faults.corrupt[shard] = 2
    broken = tmp_path / "broken"
    result = download(hub, tmp_path, "org/model", "--local-dir", str(broken), "--include", shard)
    assert result.returncode == 8
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert the_error(result) == line
    assert shard in line
    assert "downloaded twice" in line
    assert not (broken / shard).exists()
    assert not (broken / ".llmpack" / "complete.json").exists()


def test_429_is_honoured_with_retry_after(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.too_many = 2
    started = time.monotonic()
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"), "--include", "config.json")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 2  # waited the two Retry-After: 1 seconds


def test_a_revision_downloads_that_commit_and_a_new_one_replaces_the_record(hub: HubServer, tmp_path: Path) -> None:
    target = tmp_path / "c"
    assert download(hub, tmp_path, "org/model", "--local-dir", str(target), "--revision", "v1").returncode == 0
    assert_complete(target, files_of(hub, ref="v1"))
    assert download(hub, tmp_path, "org/model", "--local-dir", str(target), "--revision", "v2").returncode == 0
    assert_complete(target, files_of(hub, ref="v2"))
    record = json.loads((target / ".llmpack" / "complete.json").read_text())
    assert record["commit"] == hub.repos["org/model"].refs["v2"]


@pytest.mark.parametrize(("args", "env", "code", "words"), [
    (["org/gated"], {}, 3, "gated"),
    (["org/gated"], {"HF_TOKEN": "hf_wrong"}, 3, "HF_TOKEN"),
    (["org/absent"], {}, 4, "not found"),
    (["org/model", "--revision", "v9"], {}, 5, "no revision 'v9'"),
])
def test_each_failure_has_one_line_and_its_own_exit_code(hub: HubServer, tmp_path: Path, args: list[str],
                                                          env: dict[str, str], code: int, words: str) -> None:
    result = download(hub, tmp_path, *args, "--local-dir", str(tmp_path / "c"), **env)
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("llmpack download:")]
    assert len(lines) == 1
    assert words in lines[0]
    assert "Traceback" not in result.stderr
    assert the_error(result) == lines[0]  # and no other line but JSON progress


def test_a_gated_repo_downloads_with_the_right_token(hub: HubServer, tmp_path: Path) -> None:
    result = download(hub, tmp_path, "org/gated", "--local-dir", str(tmp_path / "c"), HF_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    assert_complete(tmp_path / "c", files_of(hub, "org/gated"))


def test_an_unreachable_hub_is_a_network_error_but_a_complete_cache_still_serves(hub: HubServer,
                                                                                tmp_path: Path) -> None:
    target = tmp_path / "c"
    assert download(hub, tmp_path, "org/model", "--local-dir", str(target)).returncode == 0
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    offline = download(hub, tmp_path, "org/model", "--local-dir", str(target), HF_ENDPOINT=dead)
    assert offline.returncode == 0, offline.stderr
    assert '"phase": "offline"' in offline.stderr
    fresh = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "new"), HF_ENDPOINT=dead)
    assert fresh.returncode == 7
    assert "cannot reach the Hub" in fresh.stderr
    assert "cannot reach the Hub" in the_error(fresh)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 6 MiB filesystem (tmpfs; the tests run as root, as CI does here)."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_not_enough_space_is_refused_before_any_byte_is_written(hub: HubServer, tmp_path: Path,
                                                                small_disk: Path) -> None:
    result = download(hub, tmp_path, "org/model", "--local-dir", str(small_disk / "c"))
    assert result.returncode == 6, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert the_error(result) == line
    assert "not enough space" in line
    assert "spec.model.storage.size" in line
    assert sum(hub.served.values()) == 0
    assert not any(p.is_file() and p.stat().st_size for p in (small_disk / "c").rglob("*"))


def test_a_stalled_transfer_reconnects_and_resumes(hub: HubServer, tmp_path: Path) -> None:
    shard = "model-00002-of-00003.safetensors"
    hub.faults.stall[shard] = (1 << 20, 8.0)  # after 1 MiB, silence for 8 s
    started = time.monotonic()
    result = download(hub, tmp_path, "org/model", "--local-dir", str(tmp_path / "c"), "--include", shard,
                      HF_HUB_DOWNLOAD_TIMEOUT="1")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 6  # it gave up on the silent connection, not waited for it to end
    assert_complete(tmp_path / "c", {shard: files_of(hub)[shard]})
    assert hub.served[f"org/model/{shard}"] <= len(files_of(hub)[shard]) + (1 << 20)


def test_the_real_hf_download_works_against_the_test_hub(hub: HubServer, tmp_path: Path) -> None:
    """The fixture speaks the Hub's protocol: huggingface_hub's own CLI downloads from it, gated repo too."""
    import shutil
    import sys

    from tests.download.conftest import TOKEN, env_for

    hf = shutil.which("hf", path=str(Path(sys.executable).parent))
    assert hf is not None
    for repo, env in (("org/model", {}), ("org/gated", {"HF_TOKEN": TOKEN})):
        target = tmp_path / repo.replace("/", "-")
        result = subprocess.run([hf, "download", repo, "--local-dir", str(target)], env=env_for(hub, tmp_path, **env),
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert_complete(target, files_of(hub, repo))
