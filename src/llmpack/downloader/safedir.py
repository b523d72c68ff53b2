"""--local-dir, reached only through directory descriptors. `O_NOFOLLOW` guards just the last name of a path,
so every path below the directory is opened one component at a time (`openat` with O_NOFOLLOW|O_DIRECTORY):
a symbolic link planted anywhere below it (a parent directory, `.llmpack`, a partial file, a target) is
refused with one line naming it, never followed, and nothing but a regular file is ever opened for writing.
The directory itself may be a link: it is the path the user chose (a mount point, say)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from llmpack.downloader.errors import LocalDirError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted where a file belongs must not hang the open (no effect on regular files).
FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _split(rel: str) -> tuple[str, str]:
    parent, _, name = rel.rpartition("/")
    return parent, name


class SafeDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def where(self, rel: str) -> Path:
        return self.path / rel

    def refuse(self, rel: str, parent_fd: int, name: str, expected: str) -> NoReturn:
        """Report what stands at `rel` instead of the directory or regular file we need there."""
        try:
            mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        if stat.S_ISLNK(mode):
            raise LocalDirError(f"{self.where(rel)} is a symbolic link: llmpack download never follows links inside "
                                "--local-dir; remove it")
        found = "a directory" if stat.S_ISDIR(mode) else "a regular file" if stat.S_ISREG(mode) else "a special file"
        raise LocalDirError(f"{self.where(rel)} is {found}, where llmpack download needs {expected}; remove it")

    def open_dir(self, rel: str, *, create: bool) -> int | None:
        """A new descriptor of directory `rel` ('' is the root), walked without following any link and made
        on the way when `create`; None when it is missing and not `create`. The caller closes it."""
        fd = os.dup(self.fd)
        walked = ""
        for part in rel.split("/") if rel else []:
            walked = f"{walked}/{part}" if walked else part
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                try:
                    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                        self.refuse(walked, fd, part, "a directory")
                    if exc.errno == errno.ENOENT and not create:
                        return None
                    raise
                finally:
                    os.close(fd)
            os.close(fd)
            fd = child
        return fd

    @contextmanager
    def _parent(self, rel: str, *, create: bool) -> Iterator[tuple[int | None, str]]:
        parent, name = _split(rel)
        fd = self.open_dir(parent, create=create)
        try:
            yield fd, name
        finally:
            if fd is not None:
                os.close(fd)

    def open(self, rel: str, flags: int, mode: int = 0o644) -> int:
        """A regular file below the root (parents made when O_CREAT is given). The caller closes it."""
        with self._parent(rel, create=bool(flags & os.O_CREAT)) as (parent, name):
            if parent is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(self.where(rel)))
            try:
                fd = os.open(name, flags | FILE_FLAGS, mode, dir_fd=parent)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                    self.refuse(rel, parent, name, "a regular file")
                raise
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                self.refuse(rel, parent, name, "a regular file")
            os.set_blocking(fd, True)
            return fd

    def lstat(self, rel: str) -> os.stat_result | None:
        """The stat of a regular file below the root, or None when it is missing; anything else there is
        refused (a link, a directory, a device)."""
        with self._parent(rel, create=False) as (parent, name):
            if parent is None:
                return None
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if not stat.S_ISREG(st.st_mode):
                self.refuse(rel, parent, name, "a regular file")
            return st

    def read(self, rel: str, limit: int = 256 << 20) -> bytes | None:
        """A small file's bytes (records), or None when it is missing."""
        try:
            fd = self.open(rel, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read(limit)

    def replace(self, src: str, dst: str) -> None:
        """Rename `src` over `dst` (both below the root), never through or onto a link."""
        self.lstat(dst)  # refuses a link, a directory or a device at the target before we replace it
        with self._parent(src, create=False) as (src_parent, src_name), \
                self._parent(dst, create=True) as (dst_parent, dst_name):
            if src_parent is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(self.where(src)))
            os.replace(src_name, dst_name, src_dir_fd=src_parent, dst_dir_fd=dst_parent)

    def unlink(self, rel: str) -> None:
        with self._parent(rel, create=False) as (parent, name):
            if parent is not None:
                with suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=parent)

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Write a small file whole: a temporary beside it, fsync, rename over it."""
        tmp = f"{rel}.tmp"
        fd = self.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.replace(tmp, rel)

    def free_bytes(self) -> int:
        st = os.statvfs(self.fd)
        return st.f_bavail * st.f_frsize
