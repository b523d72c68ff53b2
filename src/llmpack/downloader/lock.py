"""One downloader at a time per directory, also where flock is a silent no-op (NFS `nolock`, Lustre).

The lock is a directory (mkdir is atomic on every filesystem we care about) holding an owner record that
the holder rewrites every few seconds. A waiter that sees the heartbeat older than `stale_after` takes
the lock over: it renames the lock away (only one rename of a name can succeed) and checks it moved the
stale owner's lock, not a fresh one that appeared in between; then it tries mkdir like everyone else.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK = "lock"
OWNER = "owner.json"


@dataclass(frozen=True)
class Owner:
    holder: str
    token: str
    heartbeat: float

    def age(self) -> float:
        return time.time() - self.heartbeat


def holder_name() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}:{os.getpid()}"


def predecessor_died(holder: str) -> bool:
    """The holder is an earlier run of this very downloader that is gone: the same pod (its container was
    restarted; a pod runs one downloader at a time), or a pid on this host that no longer exists."""
    if holder == holder_name() and holder != f"{socket.gethostname()}:{os.getpid()}":
        return True
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def read_owner(lock_dir: Path) -> Owner | None:
    try:
        return Owner(**json.loads((lock_dir / OWNER).read_text()))
    except (FileNotFoundError, NotADirectoryError, ValueError, TypeError):
        return None


def _write_owner(lock_dir: Path, owner: Owner) -> None:
    tmp = lock_dir / f".{OWNER}.{owner.token}"
    tmp.write_text(json.dumps(owner.__dict__))
    tmp.replace(lock_dir / OWNER)


class Holdable:
    """What both locks offer the downloader: acquire (telling waiters who holds it), release, held()."""

    holder: str
    progress: Callable[[], dict[str, Any]] | None

    def acquire(self, on_wait: Callable[[Owner | None], None] | None = None, poll: float = 1.0) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def held(self, on_wait: Callable[[Owner | None], None] | None = None) -> Iterator[None]:
        self.acquire(on_wait)
        try:
            yield
        finally:
            self.release()


class DirectoryLock(Holdable):
    def __init__(self, state_dir: Path, *, heartbeat: float = 2.0, stale_after: float = 30.0) -> None:
        self.path = state_dir / LOCK
        self.heartbeat, self.stale_after = heartbeat, stale_after
        self.owner = Owner(holder_name(), uuid.uuid4().hex, time.time())
        self.holder = self.owner.holder
        self.progress: Callable[[], dict[str, Any]] | None = None  # only a Lease publishes progress
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _try_take(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path.mkdir()
        except FileExistsError:
            return False
        _write_owner(self.path, Owner(self.owner.holder, self.owner.token, time.time()))
        return True

    def _take_over(self, stale: Owner) -> None:
        moved = self.path.with_name(f"{LOCK}.stale-{uuid.uuid4().hex}")
        try:
            self.path.rename(moved)
        except OSError:
            return  # someone else moved it first
        now = read_owner(moved)
        if now is not None and now.token != stale.token:
            with contextlib.suppress(OSError):
                moved.rename(self.path)  # we moved a fresh lock: give it back
            return
        shutil.rmtree(moved, ignore_errors=True)

    def acquire(self, on_wait: Callable[[Owner | None], None] | None = None, poll: float = 1.0) -> None:
        """Block until this process holds the lock; `on_wait` hears who holds it while waiting."""
        while not self._try_take():
            owner = read_owner(self.path)
            if owner is not None and (owner.age() > self.stale_after or predecessor_died(owner.holder)):
                self._take_over(owner)
                continue
            if on_wait is not None:
                on_wait(owner)
            time.sleep(poll)
        self._beat = threading.Thread(target=self._heartbeat, name="lock-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            current = read_owner(self.path)
            if current is None or current.token != self.owner.token:
                return  # taken over (we were stale): the new holder carries on
            _write_owner(self.path, Owner(self.owner.holder, self.owner.token, time.time()))

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        current = read_owner(self.path)
        if current is not None and current.token == self.owner.token:
            shutil.rmtree(self.path, ignore_errors=True)
