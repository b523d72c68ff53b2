"""Room on the volume: how much a download still needs, and a reservation that makes the check hold.

Checking free space is not enough when two downloaders (two models on one volume) both pass the check and
then fill the disk together. So before the first byte each partial file is given its full size with
fallocate(FALLOC_FL_KEEP_SIZE): the blocks are allocated (the next downloader's check sees them gone, and
fallocate itself fails with ENOSPC if they are not there), while the file's size stays the bytes written,
so resume never takes allocated space for downloaded bytes. A filesystem without fallocate (some NFS, ZFS)
keeps only the check; glibc's posix_fallocate is not used because there it writes every block instead.
"""

from __future__ import annotations

import errno
import functools
import os
import random
import time
from collections.abc import Callable, Iterable

from llmpack.downloader.errors import is_full
from llmpack.downloader.partmap import map_path
from llmpack.downloader.plan import RemoteFile, partial_path
from llmpack.downloader.safedir import SafeDir

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    import ctypes  # here: its import costs the fast path ~10 ms

    try:
        call = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    call.restype = ctypes.c_int
    return call


def fallocate(fd: int, mode: int, offset: int, length: int) -> bool:
    """Linux fallocate(2); False when the filesystem cannot (the caller goes without), OSError otherwise."""
    call = _fallocate()
    if call is None or length <= 0:
        return False
    if call(fd, mode, offset, length) == 0:
        return True
    import ctypes  # imported already by _fallocate

    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err))


def held(st: os.stat_result, size: int, *, sparse: bool = False) -> int:
    """Bytes of a partial file already on the volume: written or reserved, at most the file's size. One
    fetched in parts (`sparse`) may be long but hold holes: only its blocks count."""
    return min(st.st_blocks * 512 if sparse else max(st.st_size, st.st_blocks * 512), size)


def still_needed(root: SafeDir, files: Iterable[RemoteFile]) -> int:
    """Bytes the volume must still give these files; what their partial files hold (written or reserved
    by an earlier run) is not counted twice."""
    total = 0
    for remote in files:
        st = root.lstat(partial_path(remote))
        sparse = st is not None and root.lstat(map_path(remote)) is not None
        total += remote.size - (held(st, remote.size, sparse=sparse) if st is not None else 0)
    return total


def reserve(root: SafeDir, files: Iterable[RemoteFile], tries: int = 2) -> None:
    """Allocate every partial file's full size (its length unchanged). On ENOSPC, give back what this call
    reserved and raise: the caller reports it before a byte is fetched. Two downloaders reserving at the same
    instant could each take part and both fail, so a failure is tried once more after a random pause."""
    files = list(files)
    for attempt in range(1, tries + 1):
        try:
            _reserve_all(root, files)
            return
        except OSError as exc:
            if not is_full(exc) or attempt == tries:
                raise
            time.sleep(random.uniform(0.1, 0.5))


def _reserve_all(root: SafeDir, files: list[RemoteFile]) -> None:
    done: list[RemoteFile] = []
    try:
        for remote in files:
            fd = root.open(partial_path(remote), os.O_RDWR | os.O_CREAT)
            done.append(remote)  # a failed fallocate may leave some blocks allocated: give those back too
            try:
                if not fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, remote.size) and remote.size:
                    return  # not on this filesystem: the free-space check is all we have
            finally:
                os.close(fd)
    except OSError:
        release(root, done)
        raise


def release(root: SafeDir, files: Iterable[RemoteFile]) -> None:
    """Give back the blocks reserved beyond what the partial files hold (best effort)."""
    for remote in files:
        try:
            fd = root.open(partial_path(remote), os.O_RDWR)
        except OSError:
            continue
        try:
            written = os.fstat(fd).st_size
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, written, remote.size - written)
        except OSError:
            pass
        finally:
            os.close(fd)
