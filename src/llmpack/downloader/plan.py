"""What a download is, as data: the files of one resolved commit, and the record that marks a directory
complete. No network; all I/O goes through SafeDir, which never follows a link inside --local-dir."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from llmpack.downloader.names import STATE_DIR, listing_problem
from llmpack.downloader.safedir import SafeDir

RECORD = "complete.json"         # in STATE_DIR, inside --local-dir, so renames into place never cross filesystems
PARTIAL = "partial"


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None = None   # LFS files: the Hub's oid
    git_sha1: str | None = None  # regular files: the git blob id

    @property
    def expected(self) -> tuple[str, str] | None:
        """(algorithm, hex digest) the bytes must hash to, or None when the Hub gave no hash."""
        if self.sha256:
            return ("sha256", self.sha256)
        if self.git_sha1:
            return ("git-sha1", self.git_sha1)
        return None


@dataclass(frozen=True)
class Plan:
    repo_id: str
    revision: str
    commit: str
    files: tuple[RemoteFile, ...]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def select(paths: Sequence[RemoteFile], include: Sequence[str], exclude: Sequence[str]) -> tuple[RemoteFile, ...]:
    """hf download's filter: keep a file matching any include (all when none), then drop any exclude.
    Patterns use fnmatchcase, where `*` also matches `/`, as the Hub client does."""
    kept = [f for f in paths if not include or any(fnmatch.fnmatchcase(f.path, p) for p in include)]
    return tuple(f for f in kept if not any(fnmatch.fnmatchcase(f.path, p) for p in exclude))


class Hasher:
    """sha256 of the bytes, or git's blob sha1 (which hashes a 'blob <size>\\0' header first)."""

    def __init__(self, algorithm: str, size: int) -> None:
        self.algorithm = algorithm
        self._hash = hashlib.sha256() if algorithm == "sha256" else hashlib.sha1(usedforsecurity=False)
        if algorithm == "git-sha1":
            self._hash.update(f"blob {size}\0".encode())

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def hash_fd(fd: int, algorithm: str, size: int, limit: int | None = None, *, buffer: int = 1 << 20,
            on_read: Callable[[int], None] | None = None) -> tuple[Hasher, int]:
    """Hash the first `limit` bytes (all when None) of an open file; the running hasher and bytes read.
    `on_read` hears of each read once it is hashed (it may raise to stop)."""
    hasher, done = Hasher(algorithm, size), 0
    view = memoryview(bytearray(buffer))  # one buffer, read into again and again
    while True:
        want = len(view) if limit is None else min(len(view), limit - done)
        n = os.preadv(fd, [view[:want]], done) if want > 0 else 0
        if not n:
            return hasher, done
        hasher.update(view[:n])
        done += n
        if on_read is not None:
            on_read(n)


@dataclass(frozen=True)
class Record:
    """Written last, after every file is verified and in place: the directory is complete for this."""

    repo_id: str
    revision: str
    commit: str
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    files: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def of(cls, plan: Plan) -> Record:
        return cls(plan.repo_id, plan.revision, plan.commit, list(plan.include), list(plan.exclude),
                   [asdict(f) for f in plan.files])

    def covers(self, repo_id: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
        return (self.repo_id, self.include, self.exclude) == (repo_id, list(include), list(exclude))

    def remote_files(self) -> list[RemoteFile]:
        return [RemoteFile(**f) for f in self.files]  # type: ignore[arg-type]


RECORD_PATH = f"{STATE_DIR}/{RECORD}"


def read_record(root: SafeDir) -> Record | None:
    """The completion record, or None when there is none we can use (absent, unreadable, or naming a file
    no listing could have named)."""
    raw = root.read(RECORD_PATH)
    if raw is None:
        return None
    try:
        record = Record(**json.loads(raw))
        files = record.remote_files()
    except (ValueError, TypeError):
        return None
    if listing_problem(f.path for f in files) is not None or not all(type(f.size) is int for f in files):
        return None
    return record


def write_record(root: SafeDir, plan: Plan) -> None:
    root.write_atomic(RECORD_PATH, json.dumps(asdict(Record.of(plan)), indent=1).encode())


def forget_record(root: SafeDir) -> None:
    root.unlink(RECORD_PATH)


def stat_complete(root: SafeDir, record: Record) -> bool:
    """The fast path: every recorded file is there with its recorded size (stat only, no reads)."""
    for f in record.remote_files():
        st = root.lstat(f.path)
        if st is None or st.st_size != f.size:
            return False
    return True


def partial_path(remote: RemoteFile) -> str:
    """Where a file's bytes grow until they are verified, relative to --local-dir."""
    return f"{STATE_DIR}/{PARTIAL}/{remote.path}.part"
