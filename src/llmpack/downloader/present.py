"""What --local-dir already holds without a completion record of ours: another tool's download (the Serving
Pack's `hf download --local-dir`), an older revision, or a run that died before writing its record. Every
listed file that is there with its listed size is hashed against the Hub's hash and kept when it matches;
the rest is fetched. Nothing else in the directory is touched (`.cache/huggingface/`, files the listing does
not name): it is not ours.

Several files are hashed at once: hashlib releases the GIL on large buffers, so threads use every core, and on
a network volume several reads in flight hide its latency. A file is read in large buffers with the kernel
told the access is sequential (more read-ahead). Files an earlier record of ours listed with the same size and
hash, and whose size on disk is still that, are kept without reading them: that record was written after they
were verified, and the fast path trusts it just as far (sizes only).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from llmpack.downloader.plan import RemoteFile, hash_fd
from llmpack.downloader.safedir import SafeDir

BUFFER = 8 << 20  # per read: few system calls, and long sequential requests to a network volume


def default_threads() -> int:
    """LLMPACK_VERIFY_THREADS, else two per usable core (reads in flight while others hash), 2 to 8."""
    try:
        return max(1, int(os.environ["LLMPACK_VERIFY_THREADS"]))
    except (KeyError, ValueError):
        return max(2, min(8, 2 * len(os.sched_getaffinity(0))))


@dataclass(frozen=True)
class Present:
    """How the listed files stand before any byte is fetched."""

    keep: tuple[RemoteFile, ...]   # in place, right size, hash right (or none given, or recorded by us)
    check: tuple[RemoteFile, ...]  # in place with the right size: to hash
    fetch: tuple[RemoteFile, ...]  # missing or of another size


def survey(root: SafeDir, files: Iterable[RemoteFile], recorded: Iterable[RemoteFile] = ()) -> Present:
    """Sort the listed files by what stat alone says (no reads). `recorded`: the files an earlier completion
    record of ours lists (for another commit or filters)."""
    trusted = set(recorded)
    keep, check, fetch = [], [], []
    for remote in files:
        st = root.lstat(remote.path)
        if st is None or st.st_size != remote.size:
            fetch.append(remote)
        elif remote.expected is None or remote in trusted:
            keep.append(remote)
        else:
            check.append(remote)
    return Present(tuple(keep), tuple(check), tuple(fetch))


def matches(root: SafeDir, remote: RemoteFile, on_bytes: Callable[[int], None] = lambda n: None,
            guard: Callable[[], None] = lambda: None) -> bool:
    """Whether the file's bytes hash to what the Hub says; `on_bytes` hears of every read, `guard` may raise
    to stop between reads."""
    assert remote.expected is not None
    algorithm, digest = remote.expected
    fd = root.open(remote.path, os.O_RDONLY)
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)

        def read(n: int) -> None:
            guard()
            on_bytes(n)

        hasher, done = hash_fd(fd, algorithm, remote.size, buffer=BUFFER, on_read=read)
        return done == remote.size and hasher.hexdigest() == digest
    finally:
        os.close(fd)


def verify(root: SafeDir, files: Sequence[RemoteFile], threads: int, on_bytes: Callable[[int], None],
           file_done: Callable[[], None], guard: Callable[[], None] = lambda: None) -> tuple[list[RemoteFile],
                                                                                           list[RemoteFile]]:
    """(matching, not matching) of `files`, hashed `threads` at a time, largest first so that the last one
    to finish is a small one. The first error stops the others at their next read and is raised."""
    stop = threading.Event()

    def stopped() -> None:
        if stop.is_set():
            raise _Stopped
        guard()

    def one(remote: RemoteFile) -> bool:
        ok = matches(root, remote, on_bytes, stopped)
        file_done()
        return ok

    ordered = sorted(files, key=lambda f: f.size, reverse=True)
    good: list[RemoteFile] = []
    bad: list[RemoteFile] = []
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(ordered) or 1)),
                            thread_name_prefix="verify") as pool:
        futures = {pool.submit(one, remote): remote for remote in ordered}
        try:
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # Ctrl-C while waiting: the hashing threads stop at their next read, not at the end
            stop.set()
            for future in futures:
                future.cancel()
            raise
        if failed := next((f for f in finished if f.exception() is not None), None):
            stop.set()
            for future in futures:
                future.cancel()
            wait(futures)
            raise failed.exception()  # type: ignore[misc]
        for future, remote in futures.items():
            (good if future.result() else bad).append(remote)
    return good, bad


class _Stopped(Exception):
    """Another file's check failed: this one stops too (never reaches the user)."""
