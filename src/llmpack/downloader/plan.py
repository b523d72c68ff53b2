"""What a download is, as data: the files of one resolved commit, and the record that marks a directory
complete. Pure: no network, and the only I/O is stat/read of the target directory."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_DIR = ".llmpack"           # inside --local-dir, so renames into place never cross filesystems
RECORD = "complete.json"
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

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def hash_file(path: Path, algorithm: str, size: int, limit: int | None = None) -> tuple[Hasher, int]:
    """Hash the first `limit` bytes (all when None) of a file; returns the running hasher and bytes read."""
    hasher, done = Hasher(algorithm, size), 0
    with path.open("rb") as f:
        while chunk := f.read(min(1 << 20, (limit - done) if limit is not None else 1 << 20)):
            hasher.update(chunk)
            done += len(chunk)
            if limit is not None and done >= limit:
                break
    return hasher, done


def file_is_valid(path: Path, remote: RemoteFile) -> bool:
    """A present file of the right size whose bytes hash to what the Hub says (size alone when it says
    nothing)."""
    try:
        if path.stat().st_size != remote.size:
            return False
    except FileNotFoundError:
        return False
    if remote.expected is None:
        return True
    algorithm, digest = remote.expected
    return hash_file(path, algorithm, remote.size)[0].hexdigest() == digest


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


def record_path(local_dir: Path) -> Path:
    return local_dir / STATE_DIR / RECORD


def read_record(local_dir: Path) -> Record | None:
    try:
        return Record(**json.loads(record_path(local_dir).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def write_record(local_dir: Path, plan: Plan) -> None:
    path = record_path(local_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(Record.of(plan)), indent=1))
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


def forget_record(local_dir: Path) -> None:
    record_path(local_dir).unlink(missing_ok=True)


def stat_complete(local_dir: Path, record: Record) -> bool:
    """The fast path: every recorded file is there with its recorded size (stat only, no reads)."""
    for f in record.remote_files():
        try:
            if (local_dir / f.path).stat().st_size != f.size:
                return False
        except FileNotFoundError:
            return False
    return True


def partial_path(local_dir: Path, remote: RemoteFile) -> Path:
    return local_dir / STATE_DIR / PARTIAL / f"{remote.path}.part"
