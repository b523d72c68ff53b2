"""A Hub-compatible server on loopback per test, and a way to run `llmpack download` as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.server import HubServer, synthetic_repo

TOKEN = "hf_test_token"


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
            **extra}


def downloader(hub: HubServer, tmp: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "llmpack.cli", "download", *args], env=env_for(hub, tmp, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def download(hub: HubServer, tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmpack.cli", "download", *args], env=env_for(hub, tmp, **env),
                          capture_output=True, text=True, timeout=120, check=False)
