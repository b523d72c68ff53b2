"""Ctrl-C while the files already on a volume are being hashed stops the hashing at the next read."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import pytest

from llmpack.downloader.plan import RemoteFile
from llmpack.downloader.present import verify
from llmpack.downloader.safedir import SafeDir


def test_an_interrupt_while_verifying_returns_at_once_instead_of_after_every_file(tmp_path: Path) -> None:
    files = []
    for i in range(10):
        (tmp_path / f"shard-{i}").write_bytes(b"x" * (4 << 20))
        files.append(RemoteFile(f"shard-{i}", 4 << 20, sha256="0" * 64))
    root = SafeDir(tmp_path)

    def slow(_: int) -> None:
        time.sleep(0.1)  # one 8 MiB read per file: ~0.1 s a file, ~0.5 s in all on two threads

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            verify(root, files * 10, 2, slow, lambda: None)  # 100 checks: ~5 s if nothing stopped them
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        root.close()
    assert time.monotonic() - started < 1.5
