"""How far the download is: a JSON line every few seconds (readable in `kubectl logs`), or, when stderr is
a terminal, a bar with bytes, rate and time left."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from llmpack.quantity import format_bytes


@dataclass
class Progress:
    bytes_total: int
    files_total: int
    stream: IO[str] = field(default_factory=lambda: sys.stderr)
    interval: float = 5.0
    bytes_done: int = 0
    files_done: int = 0
    kept: int = 0  # of bytes_done, those already there when it started: done, but not at this run's rate
    phase: str = "downloading"
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _started: float = field(default_factory=time.monotonic)
    _thread: threading.Thread | None = None

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes_done += n

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1

    def snapshot(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = (self.bytes_done - self.kept) / elapsed
        left = max(self.bytes_total - self.bytes_done, 0)
        return {
            "phase": self.phase, "bytes_done": self.bytes_done, "bytes_total": self.bytes_total,
            "files_done": self.files_done, "files_total": self.files_total,
            "percent": int(100 * self.bytes_done / self.bytes_total) if self.bytes_total else 100,
            "rate": f"{format_bytes(int(rate))}/s", "eta": f"{int(left / rate)}s" if rate > 0 else None,
        }

    def emit(self, **extra: object) -> None:
        self.stream.write(json.dumps({**self.snapshot(), **extra}) + "\n")
        self.stream.flush()

    def _loop(self) -> None:
        self.emit()  # at once: a log that says which phase began, however soon it ends
        while not self._stop.wait(self.interval):
            self.emit()

    def _bar(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as Bar,
        )

        with Bar(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                 TimeRemainingColumn(), transient=False) as bar:
            task = bar.add_task(self._label(), total=self.bytes_total)
            while not self._stop.wait(0.2):
                bar.update(task, completed=self.bytes_done, description=self._label())
            bar.update(task, completed=self.bytes_done, description=self._label())

    def _label(self) -> str:
        files = f"{self.files_done}/{self.files_total} files"
        return f"verifying {files} already here" if self.phase == "verifying" else files

    def start(self) -> None:
        on_tty = self.stream.isatty()
        self._thread = threading.Thread(target=self._bar if on_tty else self._loop, name="progress", daemon=True)
        self._thread.start()

    def stop(self, phase: str, **extra: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.phase = phase
        self.emit(**extra)
