"""A file's hash, computed in order while its parts land out of order, so that it is ready (or nearly) when
the last byte is written instead of costing a read of the whole file afterwards.

Whoever writes the bytes at the point hashed so far hashes them at once from its own buffer (no copy), then
goes on through what other parts wrote beyond that point, read back from the page cache; the others only note
what they wrote. hashlib releases the GIL while it hashes a large buffer, so the other connections keep
receiving meanwhile. A file fetched in one stream is hashed entirely from its receive buffer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from llmpack.downloader.plan import Hasher

READ_BACK = 1 << 20


class InOrderHash:
    def __init__(self, fd: int, algorithm: str, size: int, written: Iterable[tuple[int, int]] = ()) -> None:
        self._fd, self._size = fd, size
        self._hasher = Hasher(algorithm, size)
        self._pending = {start: end for start, end in written if end > start}  # written, not hashed yet
        self._hashed = 0
        self._busy = False  # one thread hashes at a time, in order
        self._failed: BaseException | None = None
        self._dropped = False  # replaced (the file is hashed again from its first byte) or closed
        self._cond = threading.Condition()
        self._buffer: memoryview | None = None  # for reading back, made on first use and kept

    @property
    def hashed(self) -> int:
        return self._hashed

    def wrote(self, start: int, data: memoryview) -> None:
        """Bytes `data` were written at `start`: hash them now if they come next, else note them."""
        with self._cond:
            if self._dropped:
                return
            if self._busy or start != self._hashed:
                self._pending[start] = start + len(data)
                return
            self._busy = True
        self._run(data, start + len(data))

    def discard(self) -> None:
        """This hash is no longer wanted: whoever is hashing stops, quietly, at its next step."""
        with self._cond:
            self._dropped = True

    def catch_up(self) -> None:
        """Hash what is already written from the point hashed so far (a resumed file's bytes on disk)."""
        with self._cond:
            if self._busy or self._hashed not in self._pending:
                return
            self._busy = True
        self._run(None, self._hashed)

    def _run(self, data: memoryview | None, at: int) -> None:
        """Hash `data` (ending at `at`), then what was written from there on, until a gap; the caller set
        _busy."""
        try:
            if data is not None:
                self._hasher.update(data)
            while True:
                with self._cond:
                    self._hashed = at
                    end = None if self._dropped else self._pending.pop(at, None)
                    if end is None:
                        self._busy = False
                        self._cond.notify_all()
                        return
                    while end - at < READ_BACK and end in self._pending:  # chunks of one part: one read
                        end = self._pending.pop(end)
                self._read_back(at, end)
                at = end
        except BaseException as exc:
            with self._cond:
                self._failed, self._busy = exc, False
                self._cond.notify_all()
                if self._dropped:  # it read a descriptor closed meanwhile: nobody wants this hash
                    return
            raise

    def _read_back(self, start: int, end: int) -> None:
        if self._buffer is None:
            self._buffer = memoryview(bytearray(READ_BACK))
        view = self._buffer
        while start < end:
            n = os.preadv(self._fd, [view[:min(len(view), end - start)]], start)
            if n <= 0:
                raise OSError(f"the partial file ended at byte {start} though {end} were written")
            self._hasher.update(view[:n])
            start += n

    def hexdigest(self) -> str:
        """The digest of the whole file, once every byte is written and hashed (waiting for the thread that
        is hashing the last of them)."""
        self.catch_up()
        with self._cond:
            self._cond.wait_for(lambda: not self._busy)
            if self._failed is not None:
                raise self._failed
            if self._hashed != self._size:
                raise RuntimeError(f"hashed {self._hashed} of {self._size} bytes")  # a bug: parts left a gap
            return self._hasher.hexdigest()
