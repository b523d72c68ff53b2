"""Every way a download can fail, each with one clear line and its own exit code (listed in
`llmpack download --help` and docs/storage.md)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class DownloadError(Exception):
    exit_code = 1


class UsageError(DownloadError):
    """The model id is not a Hub repo id, or HF_ENDPOINT is not an http(s) URL: found before anything is
    asked or written."""

    exit_code = 2


class GatedError(DownloadError):
    exit_code = 3


class NotFoundError(DownloadError):
    exit_code = 4


class RevisionNotFoundError(DownloadError):
    exit_code = 5


class NoSpaceError(DownloadError):
    exit_code = 6


class NetworkError(DownloadError):
    """The endpoint cannot be reached, or the transfer made no progress through every retry."""

    exit_code = 7


class VerificationError(DownloadError):
    exit_code = 8


class UnsafeListingError(DownloadError):
    """The Hub named a file we must not write (`../x`, an absolute path, ...), or answered nonsense:
    the whole download is refused before a byte is written."""

    exit_code = 9


class LocalDirError(DownloadError):
    """--local-dir cannot be written safely: read-only, permission denied, or a symbolic link planted in it."""

    exit_code = 10


class LockLostError(DownloadError):
    """Another downloader took our lock over (we were paused or cut off too long): we stopped writing."""

    exit_code = 11


EXIT_CODES = {cls.__name__: cls.exit_code for cls in (
    UsageError, GatedError, NotFoundError, RevisionNotFoundError, NoSpaceError, NetworkError,
    VerificationError, UnsafeListingError, LocalDirError, LockLostError)}


def is_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def from_os_error(exc: OSError, where: Path | str) -> DownloadError:
    """What a failed write means to the user: a full volume (6) or a directory we may not write (10)."""
    reason = exc.strerror or str(exc)
    if is_full(exc):
        return NoSpaceError(f"the volume filled up while writing {where} ({reason}): free space or ask for a larger "
                            "volume (spec.model.storage.size); the partial files stay and the next run resumes them")
    if exc.errno == errno.EROFS:
        return LocalDirError(f"cannot write {where}: the filesystem is read-only; mount --local-dir read-write")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return LocalDirError(f"cannot write {where}: permission denied for uid {os.getuid()}; give this user write "
                             "access to --local-dir (in a pod: the fsGroup of the volume)")
    return LocalDirError(f"cannot write {where}: {reason}")
