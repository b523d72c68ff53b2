"""Which bytes of a file fetched in parts are already in its partial file: `.llmpack/partial/<path>.map`.

Parts are written at their own offsets, so the partial file's length no longer tells how far it is. The map
does: a header (the file's size, the part size, and the hash the bytes must have, so that a map is never
applied to another file or revision; with a CRC) and one 8-byte counter per part, the bytes written from the
part's start. A counter is advanced by one pwrite after its bytes were written, so after a SIGKILL (the page
cache holds both) it never claims a byte the partial file lacks; after a power loss it might, and the hash
check, which every file passes before it is moved into place, then has the file fetched again. A map that
cannot be read (torn, foreign, claiming bytes past the end of the partial file) is removed and its partial
file started over. Opened only through SafeDir: no link is followed.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Literal

from llmpack.downloader.names import STATE_DIR
from llmpack.downloader.plan import PARTIAL, RemoteFile
from llmpack.downloader.safedir import SafeDir

MAGIC = b"LLMPMAP1"
_HEAD = struct.Struct("<8sQQI64s")  # magic, file size, part size, parts, expected digest (hex, space-padded)
_CRC = struct.Struct("<I")
_SLOT = struct.Struct("<Q")
SLOTS_AT = _HEAD.size + _CRC.size
MAX_PARTS = 1 << 20


def map_path(remote: RemoteFile) -> str:
    """Beside the partial file; `.map` keeps a 250-byte name within NAME_MAX, as `.part` does."""
    return f"{STATE_DIR}/{PARTIAL}/{remote.path}.map"


def _expected(remote: RemoteFile) -> bytes:
    return (remote.expected[1] if remote.expected else "").encode().ljust(64)


def _header(remote: RemoteFile, part_size: int, parts: int) -> bytes:
    head = _HEAD.pack(MAGIC, remote.size, part_size, parts, _expected(remote))
    return head + _CRC.pack(zlib.crc32(head))


@dataclass
class PartMap:
    fd: int
    size: int
    part_size: int
    done: list[int]

    @property
    def parts(self) -> int:
        return len(self.done)

    def span(self, index: int) -> tuple[int, int]:
        start = index * self.part_size
        return start, min(start + self.part_size, self.size)

    def advance(self, index: int, done: int) -> None:
        """Record that part `index` holds `done` bytes from its start (after they were written)."""
        self.done[index] = done
        os.pwrite(self.fd, _SLOT.pack(done), SLOTS_AT + index * _SLOT.size)

    def clear(self) -> None:
        """Nothing is written any more (the file is fetched again)."""
        self.done = [0] * self.parts
        os.pwrite(self.fd, bytes(_SLOT.size * self.parts), SLOTS_AT)

    def close(self) -> None:
        os.close(self.fd)


def _parse(raw: bytes, remote: RemoteFile, written: int) -> tuple[int, list[int]] | None:
    """(part size, bytes done per part) from a map's bytes, or None when they are not a map of this file
    that the partial file (`written` bytes long) can back."""
    if len(raw) < SLOTS_AT:
        return None
    magic, size, part_size, parts, expected = _HEAD.unpack_from(raw)
    (crc,) = _CRC.unpack_from(raw, _HEAD.size)
    if (magic, size, expected) != (MAGIC, remote.size, _expected(remote)) or crc != zlib.crc32(raw[:_HEAD.size]):
        return None
    if part_size < 1 or not 0 < parts <= MAX_PARTS or parts != -(-size // part_size):
        return None
    if len(raw) != SLOTS_AT + parts * _SLOT.size:
        return None
    done = [_SLOT.unpack_from(raw, SLOTS_AT + i * _SLOT.size)[0] for i in range(parts)]
    for i, n in enumerate(done):
        start = i * part_size
        if n > min(part_size, size - start) or (n and start + n > written):
            return None
    return part_size, done


def load(root: SafeDir, remote: RemoteFile, written: int) -> PartMap | Literal[False] | None:
    """The map of this file's partial file (`written` bytes long): a PartMap; None when there is none;
    False when there was one that cannot be trusted (it is removed: the caller starts the file over)."""
    try:
        fd = root.open(map_path(remote), os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        raw = os.pread(fd, SLOTS_AT + MAX_PARTS * _SLOT.size + 1, 0)
        parsed = _parse(raw, remote, written)
    except BaseException:
        os.close(fd)
        raise
    if parsed is None:
        os.close(fd)
        root.unlink(map_path(remote))
        return False
    part_size, done = parsed
    return PartMap(fd, remote.size, part_size, done)


def create(root: SafeDir, remote: RemoteFile, part_size: int, prefix: int) -> PartMap:
    """A new map for a file whose partial file holds its first `prefix` bytes (an earlier run fetched it in
    one stream): those count as done. Written with a single pwrite, so a kill leaves it whole or torn (and a
    torn one is refused by `load`)."""
    parts = -(-remote.size // part_size)
    done = [max(0, min(prefix - i * part_size, part_size, remote.size - i * part_size)) for i in range(parts)]
    fd = root.open(map_path(remote), os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        os.pwrite(fd, _header(remote, part_size, parts) + b"".join(_SLOT.pack(n) for n in done), 0)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            root.unlink(map_path(remote))
        raise
    return PartMap(fd, remote.size, part_size, done)
