"""Fetch one file: stream it into a partial file beside the target (a large one in ranged parts, each over its
own connection), resume each part with Range after a crash or a dropped connection, hash the bytes in order as
they land, and move the file into place only when the hash is right.

Bytes go from the socket straight into a buffer each connection reuses, are written at their offset (pwrite)
and hashed from that same buffer; a part's progress is recorded in the file's map (partmap.py) after its
bytes are written. Every write is preceded by `Job.guard`, which raises once the lock was taken over or
another file failed, so a downloader that lost its lock stops at the next chunk. An attempt that brings
bytes past the furthest point its part reached refills the part's retry budget; one that brings none spends
it (an empty 200 forever fails in bounded time, a link that drops after every MiB still finishes).

A server that ignores Range answers a part with the whole file: that connection then takes the file from
its first byte to its last in one stream, and the file's other parts are dropped. The Hub publishes one hash
per file, none per part, so a mismatch cannot be pinned on a part: the whole file is fetched once more, and a
second mismatch is an error naming the file and both hashes.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from llmpack.downloader import PART_SIZE, partmap
from llmpack.downloader.connection import Origin, Pool, Response, TransportError
from llmpack.downloader.errors import GatedError, NotFoundError, VerificationError
from llmpack.downloader.partmap import PartMap, map_path
from llmpack.downloader.plan import RemoteFile, partial_path
from llmpack.downloader.retry import RETRY_STATUS, Attempts, default_backoff, retry_after
from llmpack.downloader.safedir import SafeDir
from llmpack.downloader.space import FALLOC_FL_KEEP_SIZE, fallocate
from llmpack.downloader.verify import InOrderHash

CHUNK = 256 << 10  # per read and write; also the most a kill loses per connection (with what its socket held)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(?:\d+|\*)$")
_EXPIRED = frozenset({401, 403, 404, 410})  # what a CDN says to a signed URL that has expired


class Cancelled(Exception):
    """Another file of the download failed: this one stops too (never reaches the user)."""


class Abandoned(Exception):
    """This part's file is now fetched in one stream (its server ignored Range): the part is dropped."""


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

    pool: Pool
    source: Source
    root: SafeDir
    on_bytes: Callable[[int], None]
    guard: Callable[[], None] = lambda: None      # raises when we may no longer write
    pause: Callable[[float], None] = time.sleep   # waits between attempts; raises Cancelled to stop early
    backoff: float = field(default_factory=default_backoff)
    reserve: bool = True                          # keep the partial file's full size allocated
    part_size: int = PART_SIZE                    # larger files are fetched in parts of this size; 0: never


@dataclass(eq=False)
class Part:
    """Bytes [start, end) of a file, `done` of them written. Index -1: the whole file in one stream, taken
    over from the parts when the server ignored Range."""

    file: Partial
    index: int
    start: int
    end: int
    done: int

    @property
    def offset(self) -> int:
        return self.start + self.done

    @property
    def full(self) -> bool:
        return self.offset >= self.end

    @property
    def closed_range(self) -> bool:
        """Asked for with an end (bytes=a-b): a part of a file fetched in parts."""
        return self.file.map is not None and self.index >= 0

    def what(self) -> str:
        if not self.closed_range:
            return self.file.remote.path
        assert self.file.map is not None
        return f"{self.file.remote.path} (part {self.index + 1} of {self.file.map.parts})"


class Partial:
    """A file's partial copy: its descriptor, its parts and what each holds, and the in-order hash."""

    def __init__(self, job: Job, remote: RemoteFile) -> None:
        self.job, self.remote = job, remote
        self.algorithm = remote.expected[0] if remote.expected else "sha256"
        self.attempt = 1
        self.location: str | None = None  # where the Hub redirected this file's GETs (its CDN), once known
        self.foreign = False              # ... on another origin: no token goes there
        self.map: PartMap | None = None
        self._whole: Part | None = None
        self._counted = 0                 # bytes reported to on_bytes
        self._finishing = False
        self.on_answer: Callable[[], None] | None = None  # called once, when the first GET is answered
        self._lock = threading.Lock()
        # One writer at a time: the filesystem serialises writes to a file anyway (its inode lock), and
        # waiting here sleeps where waiting there spins a CPU (measured: a fifth of the CPU with 8 writers).
        # Held also to close the file, so a dropped part's late write never reaches a closed (or reused) fd.
        self._writing = threading.Lock()
        self.fd: int | None = job.root.open(partial_path(remote), os.O_RDWR | os.O_CREAT)
        try:
            self.parts = self._open(os.fstat(self.fd).st_size)
        except BaseException:
            self.close()
            raise
        self.hash = InOrderHash(self.fd, self.algorithm, remote.size, [(p.start, p.offset) for p in self.parts])
        self._count(sum(p.done for p in self.parts))

    def _open(self, written: int) -> list[Part]:
        job, remote = self.job, self.remote
        assert self.fd is not None
        if written > remote.size:  # not from this file: start over
            written = self._truncate()
        if job.reserve:
            with contextlib.suppress(OSError):  # the reservation before the first byte already said no if no room
                fallocate(self.fd, FALLOC_FL_KEEP_SIZE, 0, remote.size)
        found = partmap.load(job.root, remote, written)
        if found is False:  # a map we cannot trust: the partial file's bytes are of unknown extent
            written = self._truncate()
            found = None
        if found is None and job.part_size and remote.size > job.part_size:
            job.guard()
            part_size = max(job.part_size, -(-remote.size // partmap.MAX_PARTS))  # a map of at most 8 MiB
            found = partmap.create(job.root, remote, part_size, written)
        self.map = found
        if found is None:
            return [Part(self, 0, 0, remote.size, written)]
        return [Part(self, i, *found.span(i), found.done[i]) for i in range(found.parts)]

    def _truncate(self) -> int:
        assert self.fd is not None
        self.job.guard()
        os.ftruncate(self.fd, 0)
        return 0

    def _count(self, n: int) -> None:
        self._counted += n
        self.job.on_bytes(n)

    # -- while parts arrive ------------------------------------------------------------------------------
    def to_fetch(self) -> list[Part]:
        return [p for p in self.parts if not p.full]

    def dropped(self, part: Part) -> bool:
        return self._whole is not None and part is not self._whole

    def write(self, part: Part, data: memoryview) -> None:
        """Write bytes that arrived for `part` at its offset, record them, hash them (in order)."""
        self.job.guard()
        start = position = part.offset
        view = data
        with self._writing:
            if self.fd is None or self.dropped(part):
                raise Abandoned
            while view:
                written = os.pwrite(self.fd, view, position)
                view, position = view[written:], position + written
        with self._lock:
            if self.dropped(part):
                raise Abandoned
            part.done += len(data)
            if part.closed_range:
                assert self.map is not None
                self.map.advance(part.index, part.done)
            hashing = self.hash
            self._count(len(data))
        hashing.wrote(start, data)

    def restart(self, part: Part) -> None:
        """The server ignored our Range on a resumed stream: take its bytes from the start again (they
        overwrite the same ones)."""
        with self._lock:
            self._count(-self._counted)
            part.done = 0
            self._rehash()

    def take_whole(self) -> Part | None:
        """The server ignored the Range of a part: fetch the file in one stream from its first byte (None:
        another connection already does)."""
        with self._lock:
            if self._whole is not None:
                return None
            self._whole = Part(self, -1, 0, self.remote.size, 0)
            self._count(-self._counted)
            self._rehash()
            return self._whole

    def _rehash(self) -> None:
        """Hash from the first byte again; the old hash is dropped (a part's late write may still reach it)."""
        assert self.fd is not None
        self.hash.discard()
        self.hash = InOrderHash(self.fd, self.algorithm, self.remote.size)

    def complete(self, part: Part) -> bool:
        """`part` is full: True when that makes the file complete, for exactly one caller (who finishes it)."""
        with self._lock:
            done = self._whole.full if self._whole is not None else all(p.full for p in self.parts)
            if self._finishing or not done or self.dropped(part):
                return False
            self._finishing = True
            return True

    # -- once every byte is there ------------------------------------------------------------------------
    def finish(self) -> bool:
        """Put the verified file in place (True), or arm every part to be fetched again after a first
        mismatch (False); a second mismatch raises."""
        got = self.hash.hexdigest()
        self.job.guard()
        assert self.fd is not None
        expected = self.remote.expected
        if expected is None or got == expected[1]:
            os.fsync(self.fd)
            self.close()
            if self.map is not None:  # before the rename: a map is never left claiming a missing partial file
                self.job.root.unlink(map_path(self.remote))
            self.job.root.replace(partial_path(self.remote), self.remote.path)
            return True
        if self.attempt == 2:
            raise VerificationError(f"{self.remote.path}: downloaded twice and both times the {expected[0]} was "
                                    f"{got}, not {expected[1]}: the source serves corrupt bytes")
        self.attempt = 2
        self._truncate()
        if self.job.reserve:
            with contextlib.suppress(OSError):
                fallocate(self.fd, FALLOC_FL_KEEP_SIZE, 0, self.remote.size)
        if self.map is not None:
            self.map.clear()
        for part in self.parts:
            part.done = 0
        self._whole, self._finishing = None, False
        self._count(-self._counted)
        self._rehash()
        return False

    def close(self) -> None:
        with self._writing:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
        if self.map is not None and self.map.fd >= 0:
            self.map.close()
            self.map.fd = -1

    # -- where to ask ------------------------------------------------------------------------------------
    def answered(self) -> None:
        """The first GET of this file has an answer (or failed): its other parts may go now, and to where
        the Hub redirected it, so the Hub is asked once per file, not once per part."""
        with self._lock:
            call, self.on_answer = self.on_answer, None
        if call is not None and self._whole is None:  # whole: the server ignored Range; the parts are dropped
            call()

    def remember(self, asked: str, answered: Response) -> None:
        """Keep where the Hub redirected the file (its CDN), so its other parts ask there directly."""
        if answered.url != asked and self.location is None:
            self.location = answered.url
            self.foreign = Origin.of(answered.url) != Origin.of(asked)


def _range_start(header: str | None) -> int | None:
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(1)) if match else None


def _request(job: Job, part: Part) -> tuple[str, dict[str, str], bool]:
    """Where to ask for the part's next bytes and with which headers; True when that is the file's CDN."""
    file = part.file
    # identity: a Range counts the bytes we store, not those of some compressed form of them
    headers = {**job.source.headers, "Accept-Encoding": "identity"}
    if part.closed_range:
        headers["Range"] = f"bytes={part.offset}-{part.end - 1}"
    elif part.offset:
        headers["Range"] = f"bytes={part.offset}-"
    if file.location is None:
        return job.source.url(file.remote.path), headers, False
    if file.foreign:
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    return file.location, headers, True


def _attempt(job: Job, part: Part, buffer: memoryview) -> tuple[str, float | None, Part]:
    """One GET of the part's missing bytes: why it ended short (and the server's Retry-After), or "" when
    the part is full; and the part the bytes went to (the whole file, once the server ignored Range)."""
    remote = part.file.remote
    while True:
        url, headers, cdn = _request(job, part)
        with job.pool.get(url, headers) as response:
            status = response.status
            if cdn and status in _EXPIRED:  # a signed URL past its time: ask the Hub again
                part.file.location = None
                continue
            if status in RETRY_STATUS:
                return f"the Hub answered {status}", retry_after(response.headers), part
            redirected = response.url != url  # to the CDN: its refusals are its own, not the token's
            if status in (401, 403) and not redirected:
                raise GatedError(f"{remote.path}: the Hub refused the token ({status}): set "
                                 "spec.model.authSecretName to a Secret whose HF_TOKEN can read this repo")
            if status == 404 and not redirected:
                raise NotFoundError(f"{remote.path} is listed but cannot be fetched (404)")
            if status not in (200, 206):
                return f"the {'CDN' if redirected else 'Hub'} answered {status}", None, part
            encoding = (response.header("Content-Encoding") or "identity").strip().lower()
            if encoding != "identity":
                return f"the Hub answered in {encoding} encoding though identity was asked", None, part
            if status == 206 and _range_start(response.header("Content-Range")) != part.offset:
                return f"the Hub answered a range other than bytes={part.offset}-", None, part
            part.file.remember(url, response)
            if status == 200 and "Range" in headers:  # the server ignored our Range
                if part.closed_range:
                    whole = part.file.take_whole()
                    if whole is None:
                        raise Abandoned
                    part = whole
                else:
                    part.file.restart(part)
            part.file.answered()
            return _body(part, response, buffer, status), None, part


def _body(part: Part, response: Response, buffer: memoryview, status: int) -> str:
    """Read the answer's body into the part; why it ended short, or ""."""
    before = part.done
    while not part.full:
        n = response.readinto(buffer[:min(len(buffer), part.end - part.offset)])
        if not n:
            break
        part.file.write(part, buffer[:n])
    if part.full:
        return ""  # a longer body's rest is ignored: the first `size` bytes are what the hash check judges
    got = part.done - before
    return f"the Hub answered {status} with an empty body" if not got else f"the body ended after {got} bytes"


def fill(job: Job, part: Part, buffer: memoryview) -> Part:
    """Bring the part to full size, reconnecting with Range as long as attempts make progress; the part that
    was filled (the whole file, if its server ignored Range). Raises Abandoned when the part was dropped."""
    if part.file.dropped(part):
        raise Abandoned
    attempts = Attempts(part.what(), backoff=job.backoff, pause=job.pause)
    furthest = part.done
    while not part.full:
        try:
            why, wait, now = _attempt(job, part, buffer)
        except TransportError as exc:  # refused, dropped, stalled, reset
            why, wait, now = str(exc), None, part
        finally:
            part.file.answered()  # (a no-op after the first time)
        if now is not part:  # the whole file in one stream from now on
            part, furthest = now, now.done
            attempts = Attempts(part.what(), backoff=job.backoff, pause=job.pause)
        if part.done > furthest:
            furthest = part.done
            attempts.progressed()  # and reconnect at once
        elif not part.full:
            attempts.failed(why, wait)
    return part

