"""Fetch one file: stream into a partial file beside the target, resume it with Range after a crash or a
dropped connection, hash while writing, and move it into place only when the hash is right.

Every write is preceded by `Job.guard`, which raises once the lock was taken over or another file failed,
so a downloader that lost its lock stops at the next chunk. An attempt that brings bytes past the furthest
point reached refills the retry budget; one that brings none spends it (an empty 200 forever fails in
bounded time, a link that drops after every MiB still finishes). Bytes are written at explicit offsets
(pwrite), so ranges fetched over several connections can later share this code.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from llmpack.downloader.errors import GatedError, NotFoundError, VerificationError, from_os_error
from llmpack.downloader.plan import Hasher, RemoteFile, hash_fd, partial_path
from llmpack.downloader.retry import RETRY_STATUS, Attempts, default_backoff, retry_after
from llmpack.downloader.safedir import SafeDir
from llmpack.downloader.space import FALLOC_FL_KEEP_SIZE, fallocate

CHUNK = 256 << 10
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(?:\d+|\*)$")


class Cancelled(Exception):
    """Another file of the download failed: this one stops too (never reaches the user)."""


@dataclass(frozen=True)
class Source:
    """Where a repo's files are served from (HF_ENDPOINT) and with which headers (token, user agent)."""

    endpoint: str
    repo_id: str
    commit: str
    headers: dict[str, str]

    def url(self, path: str) -> str:
        return f"{self.endpoint.rstrip('/')}/{self.repo_id}/resolve/{self.commit}/{quote(path)}"


@dataclass
class Job:
    """What the transfers of one download share."""

    client: httpx.Client
    source: Source
    root: SafeDir
    on_bytes: Callable[[int], None]
    guard: Callable[[], None] = lambda: None      # raises when we may no longer write
    pause: Callable[[float], None] = time.sleep   # waits between attempts; raises Cancelled to stop early
    backoff: float = field(default_factory=default_backoff)
    reserve: bool = True                          # keep the partial file's full size allocated


class Partial:
    """A file's partial copy: an open descriptor, the leading bytes it holds and their running hash."""

    def __init__(self, job: Job, remote: RemoteFile) -> None:
        self.job, self.remote = job, remote
        self.fd = job.root.open(partial_path(remote), os.O_RDWR | os.O_CREAT)
        self.algorithm = remote.expected[0] if remote.expected else "sha256"
        if os.fstat(self.fd).st_size > remote.size:  # not from this file: start over
            job.guard()
            os.ftruncate(self.fd, 0)
        if job.reserve:
            with contextlib.suppress(OSError):  # the reservation before the first byte already said no if no room
                fallocate(self.fd, FALLOC_FL_KEEP_SIZE, 0, remote.size)
        self.hasher, self.have = hash_fd(self.fd, self.algorithm, remote.size)
        self._buffer = bytearray()
        job.on_bytes(self.have)

    def restart(self) -> None:
        """The server ignored our Range: take its bytes from the start again (they overwrite the same ones)."""
        self.job.on_bytes(-self.have)
        self.hasher, self.have = Hasher(self.algorithm, self.remote.size), 0

    def feed(self, data: bytes) -> bool:
        """Take bytes as they arrive, writing them a chunk at a time; False once the file is full (a longer
        body's rest is ignored: the first `size` bytes are what the hash check judges)."""
        room = self.remote.size - self.have - len(self._buffer)
        self._buffer += data[:room]
        while len(self._buffer) >= CHUNK:
            self._write(CHUNK)
        return len(data) < room

    def flush(self) -> None:
        """Write what arrived (also after a dropped connection: those bytes count)."""
        if self._buffer:
            self._write(len(self._buffer))

    def _write(self, n: int) -> None:
        self.job.guard()
        data = bytes(self._buffer[:n])
        view = memoryview(data)
        while view:
            view = view[os.pwrite(self.fd, view, self.have + n - len(view)):]
        self.hasher.update(data)
        self.have += n
        del self._buffer[:n]
        self.job.on_bytes(n)

    def close(self) -> None:
        os.close(self.fd)


def _range_start(header: str | None) -> int | None:
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(1)) if match else None


def _attempt(job: Job, part: Partial) -> tuple[str, float | None]:
    """One GET from where the partial file ends; why it ended short (and the server's Retry-After), or
    ("", None) when the file is whole."""
    remote = part.remote
    # identity: a Range counts the bytes we store, not those of some compressed form of them
    headers = {**job.source.headers, "Accept-Encoding": "identity",
               **({"Range": f"bytes={part.have}-"} if part.have else {})}
    with job.client.stream("GET", job.source.url(remote.path), headers=headers) as response:
        status = response.status_code
        if status in RETRY_STATUS:
            return f"the Hub answered {status}", retry_after(response.headers)
        if status in (401, 403):
            raise GatedError(f"{remote.path}: the Hub refused the token ({status}): set spec.model.authSecretName "
                             "to a Secret whose HF_TOKEN can read this repo")
        if status == 404:
            raise NotFoundError(f"{remote.path} is listed but cannot be fetched (404)")
        if status not in (200, 206):
            return f"the Hub answered {status}", None
        if status == 206 and _range_start(response.headers.get("Content-Range")) != part.have:
            return f"the Hub answered a range other than bytes={part.have}-", None
        if status == 200 and part.have:
            part.restart()
        before = part.have
        try:
            for data in response.iter_bytes():
                if not part.feed(data):
                    break
        finally:
            part.flush()
        if part.have < remote.size:
            got = part.have - before
            return (f"the Hub answered {status} with an empty body" if not got
                    else f"the body ended after {got} bytes"), None
    return "", None


def _fill(job: Job, part: Partial) -> None:
    """Bring the partial file to full size, reconnecting with Range as long as attempts make progress."""
    attempts = Attempts(part.remote.path, backoff=job.backoff, pause=job.pause)
    furthest = part.have
    while part.have < part.remote.size:
        try:
            why, wait = _attempt(job, part)
        except httpx.RequestError as exc:  # refused, dropped, stalled, reset
            why, wait = f"{type(exc).__name__} ({exc})", None
        if part.have > furthest:
            furthest = part.have
            attempts.progressed()  # and reconnect at once
        elif part.have < part.remote.size:
            attempts.failed(why, wait)


def fetch(job: Job, remote: RemoteFile) -> None:
    """Put one verified file in place. A file that fails verification is fetched again once; a second
    failure names the file and both hashes."""
    try:
        for attempt in (1, 2):
            part = Partial(job, remote)
            try:
                _fill(job, part)
                os.fsync(part.fd)
            finally:
                part.close()
            got = part.hasher.hexdigest()
            job.guard()
            if remote.expected is None or got == remote.expected[1]:
                job.root.replace(partial_path(remote), remote.path)
                return
            job.root.unlink(partial_path(remote))
            job.on_bytes(-remote.size)
            if attempt == 2:
                raise VerificationError(f"{remote.path}: downloaded twice and both times the {remote.expected[0]} "
                                        f"was {got}, not {remote.expected[1]}: the source serves corrupt bytes")
    except OSError as exc:
        raise from_os_error(exc, job.root.where(remote.path)) from None
