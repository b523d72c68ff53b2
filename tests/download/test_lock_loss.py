"""A downloader that loses its lock (paused past the stale timeout, another took over) stops writing the
moment it wakes, says so in one line, and leaves its successor's work alone."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.download.conftest import assert_complete, downloader, end, files_of, the_error
from tests.hub.server import HubServer, synthetic_repo

SHARD = "model-00001-of-00001.safetensors"
# What the paused process's sockets had taken in (its kernel buffers, autotuned to a few MiB on loopback)
# is served and lost whatever the model's size: the model is large enough that 5% is more than that for two
# connections (the shard is fetched in 16 ranged parts; each connection more would lose as much again).
SIZE = 256 << 20
CONNECTIONS = "2"


def until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_paused_downloader_whose_lock_was_taken_over_stops_writing_and_its_successor_finishes(
        hub: HubServer, tmp_path: Path) -> None:
    hub.repos["org/big"] = synthetic_repo("org/big", shards=1, shard_size=SIZE)
    model = sum(len(d) for d in files_of(hub, "org/big").values())
    hub.faults.rate = 64 << 20
    target = tmp_path / "cache"
    part = target / ".llmpack" / "partial" / f"{SHARD}.part"

    def written() -> int:
        return part.stat().st_size if part.exists() else 0

    first = downloader(hub, tmp_path, "org/big", "--local-dir", str(target), "--connections", CONNECTIONS,
                       LLMPACK_LOCK_STALE_SECONDS="2")
    second: subprocess.Popen[str] | None = None
    try:
        until(lambda: written() >= SIZE // 4, 30, "the first downloader to write a quarter of the shard")
        os.kill(first.pid, signal.SIGSTOP)  # as a node freezes, or a VM is suspended
        paused_at = written()
        second = downloader(hub, tmp_path, "org/big", "--local-dir", str(target), "--connections", CONNECTIONS,
                            LLMPACK_LOCK_STALE_SECONDS="2")
        until(lambda: written() >= paused_at + SIZE // 8, 30, "the second downloader to take over and resume")
        os.kill(first.pid, signal.SIGCONT)
        code = first.wait(30)
        result = subprocess.CompletedProcess(first.args, code, "", first.stderr.read() if first.stderr else "")
        assert code == 11, result.stderr
        line = the_error(result)
        assert "took over the lock" in line
        assert "stopped writing" in line
        assert second.wait(60) == 0, second.stderr.read() if second.stderr else ""
    finally:
        end(first, second)
    assert_complete(target, files_of(hub, "org/big"))
    served = sum(n for key, n in hub.served.items() if key.startswith("org/big/"))
    assert served <= 1.05 * model, f"served {served / model:.3f}x the model"
    assert not (target / ".llmpack" / "lock").exists()  # the successor released it; the first left it alone
