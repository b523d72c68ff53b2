"""A Hub-compatible server on loopback per test, and a way to run `llmpack download` as a user would."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hub.server import HubServer, synthetic_repo

TOKEN = "hf_test_token"
# A 4 MiB shard in four ranged parts over four connections; the default 16Mi parts would leave the test repo's
# shards in one stream each.
PARTS = ("--part-size", "1Mi", "--connections", "4")
# Run a test both ways: each file in one stream, and files in ranged parts.
EITHER_WAY = pytest.mark.parametrize("way", [(), PARTS], ids=["one-stream", "ranged-parts"])


@pytest.fixture
def hub() -> Iterator[HubServer]:
    server = HubServer([
        synthetic_repo("org/model", shards=3, shard_size=4 << 20, revisions=2),
        synthetic_repo("org/gated", token=TOKEN),
    ]).start()
    yield server
    server.stop()


def env_for(hub: HubServer, tmp: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1", "LLMPACK_PROGRESS_SECONDS": "0.5", "HF_HUB_DOWNLOAD_TIMEOUT": "5",
            "LLMPACK_RETRY_SECONDS": "0.05", **extra}


def downloader(hub: HubServer, tmp: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "llmpack.cli", "download", *args], env=env_for(hub, tmp, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def download(hub: HubServer, tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmpack.cli", "download", *args], env=env_for(hub, tmp, **env),
                          capture_output=True, text=True, timeout=120, check=False)


def end(*procs: subprocess.Popen[str] | None) -> None:
    """Leave no downloader behind, paused or not (a failed test's cleanup)."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


def files_of(hub: HubServer, repo: str = "org/model", ref: str = "main") -> dict[str, bytes]:
    r = hub.repos[repo]
    return r.commits[r.refs[ref]]


def assert_complete(directory: Path, expected: dict[str, bytes]) -> None:
    for path, data in expected.items():
        assert hashlib.sha256((directory / path).read_bytes()).digest() == hashlib.sha256(data).digest(), path
    partial = directory / ".llmpack" / "partial"
    assert not (partial.exists() and list(partial.rglob("*.part")))


def _is_event(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def the_error(result: subprocess.CompletedProcess[str]) -> str:
    """A failed run's error. Its stderr holds JSON objects, one per line (progress and events), and exactly
    one other line, which starts with `llmpack download:`; nothing else (no traceback, no warning)."""
    assert result.returncode != 0, result.stderr
    others = [line for line in result.stderr.splitlines() if not _is_event(line)]
    assert len(others) == 1, result.stderr
    assert others[0].startswith("llmpack download: "), result.stderr
    return others[0]


def regular_files(directory: Path) -> list[Path]:
    """Every regular file below `directory` that holds bytes (empty partial files carry nothing)."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink() and p.stat().st_size)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount real small filesystems (tmpfs; the tests run as root, as CI does here): mount(name, options)."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        # A test ends its downloaders; should one still hold a file there, unmount lazily and let the test's own
        # failure be the report (a second error from the teardown would only hide it).
        if subprocess.run(["umount", str(point)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(point)], check=True)
