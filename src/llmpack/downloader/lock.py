"""One downloader at a time per directory, also where flock is a silent no-op (NFS `nolock`, Lustre).

The lock is the directory `.llmpack/lock` (mkdir is atomic on every filesystem we care about). Its holder
keeps one record in it, `holder-<token>` (who holds it), whose mtime is the heartbeat. A waiter that finds
the heartbeat older than `stale_after`, or the holder's process gone, takes over by renaming exactly that
record away: of several waiters only one rename succeeds, and a fresh holder's record, named by another
token, is never touched. The holder checks its record is still there before every write (`check`): once it
is gone the lock was taken over while this process was paused or cut off, and it stops writing at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from llmpack.downloader.errors import LockLostError
from llmpack.downloader.names import STATE_DIR
from llmpack.downloader.safedir import SafeDir

LOCK = "lock"
HOLDER = "holder-"   # the record: holder-<token>
NEW = "new-"         # a record being written, before it is renamed into place
GONE = "gone-"       # a stale record a waiter took over, about to be removed
LOCK_PATH = f"{STATE_DIR}/{LOCK}"


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


def read_owner(lock_fd: int) -> Owner | None:
    """The freshest holder record in the lock directory, or None when it holds none."""
    found: list[Owner] = []
    for name in os.listdir(lock_fd):
        if not name.startswith(HOLDER):
            continue
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=lock_fd)
        except OSError:
            continue  # gone meanwhile, or not a file: not a record
        try:
            mtime = os.fstat(fd).st_mtime
            holder = json.loads(os.read(fd, 4096) or b"{}").get("holder", "?")
        except (OSError, ValueError, AttributeError):
            holder = "?"
        finally:
            os.close(fd)
        found.append(Owner(str(holder), name[len(HOLDER):], mtime))
    return max(found, key=lambda o: o.heartbeat, default=None)


class Holdable:
    """What both locks offer the downloader: acquire (telling waiters who holds it), check (raises
    LockLostError once another holder has it), release, held()."""

    holder: str
    progress: Callable[[], dict[str, Any]] | None

    def acquire(self, on_wait: Callable[[Owner | None], None] | None = None, poll: float = 1.0) -> None:
        raise NotImplementedError

    def check(self) -> None:
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
    def __init__(self, root: SafeDir, *, stale_after: float = 30.0, heartbeat: float | None = None) -> None:
        self.root = root
        self.stale_after = stale_after
        self.heartbeat = heartbeat if heartbeat is not None else min(2.0, stale_after / 4)
        self.token = uuid.uuid4().hex
        self.holder = holder_name()
        self.progress: Callable[[], dict[str, Any]] | None = None  # only a Lease publishes progress
        self._record = f"{HOLDER}{self.token}"
        self._fd: int | None = None  # our lock directory, while we hold it
        self._lost: str | None = None
        self._last_beat = 0.0
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- taking it ---------------------------------------------------------------------------------------
    def _publish(self, lock_fd: int, stale: Owner | None = None) -> bool:
        """Put our record in place (taking over `stale`'s when given); False when someone else won."""
        new = f"{NEW}{self.token}"
        try:
            fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                         dir_fd=lock_fd)
            try:
                os.write(fd, json.dumps({"holder": self.holder, "token": self.token}).encode())
            finally:
                os.close(fd)
            now = time.time()
            os.utime(new, (now, now), dir_fd=lock_fd, follow_symlinks=False)  # our clock, as heartbeats are
            if stale is not None:
                os.rename(f"{HOLDER}{stale.token}", f"{GONE}{self.token}", src_dir_fd=lock_fd, dst_dir_fd=lock_fd)
            os.rename(new, self._record, src_dir_fd=lock_fd, dst_dir_fd=lock_fd)
        except FileNotFoundError:  # another waiter took the stale record, or cleared the directory
            for name in (new, f"{GONE}{self.token}"):
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=lock_fd)
            return False
        with contextlib.suppress(OSError):
            os.unlink(f"{GONE}{self.token}", dir_fd=lock_fd)
        return True

    def _clear_abandoned(self, state_fd: int, lock_fd: int) -> None:
        """A lock directory with no holder record whose mtime is stale: its creator died before writing
        one (or an older llmpack left it). rmdir only removes an empty directory, so a holder that has
        just published is never removed."""
        for name in os.listdir(lock_fd):
            if name.startswith((NEW, GONE)) or name in ("owner.json",) or name.startswith(".owner.json."):
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=lock_fd)
        with contextlib.suppress(OSError):
            os.rmdir(LOCK, dir_fd=state_fd)

    def _try(self, state_fd: int) -> tuple[bool, Owner | None]:
        """One go at the lock: (held, the holder we saw)."""
        try:
            os.mkdir(LOCK, 0o755, dir_fd=state_fd)
            created = True
        except FileExistsError:
            created = False
        lock_fd = self.root.open_dir(LOCK_PATH, create=False)
        if lock_fd is None:
            return False, None  # released meanwhile: try again at once
        owner = None
        try:
            if created:
                held = self._publish(lock_fd)
            else:
                owner = read_owner(lock_fd)
                if owner is None:
                    if time.time() - os.fstat(lock_fd).st_mtime > self.stale_after:
                        self._clear_abandoned(state_fd, lock_fd)
                    held = False
                elif owner.age() > self.stale_after or predecessor_died(owner.holder):
                    held = self._publish(lock_fd, stale=owner)
                else:
                    held = False
        except BaseException:
            os.close(lock_fd)
            raise
        if held:
            self._fd = lock_fd
        else:
            os.close(lock_fd)
        return held, owner

    def acquire(self, on_wait: Callable[[Owner | None], None] | None = None, poll: float = 1.0) -> None:
        """Block until this process holds the lock; `on_wait` hears who holds it while waiting."""
        state_fd = self.root.open_dir(STATE_DIR, create=True)
        assert state_fd is not None
        try:
            while True:
                held, owner = self._try(state_fd)
                if held:
                    break
                if owner is not None and owner.age() > self.stale_after:
                    time.sleep(0.05)  # another waiter is taking it over right now: look again
                    continue
                if on_wait is not None:
                    on_wait(owner)
                time.sleep(poll if self._exists(state_fd) else 0.05)
        finally:
            os.close(state_fd)
        self._last_beat = time.monotonic()
        self._beat = threading.Thread(target=self._heartbeat, name="lock-heartbeat", daemon=True)
        self._beat.start()

    @staticmethod
    def _exists(state_fd: int) -> bool:
        try:
            os.stat(LOCK, dir_fd=state_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    # -- holding it --------------------------------------------------------------------------------------
    def _lose(self) -> str:
        if self._lost is None:
            lock_fd = self.root.open_dir(LOCK_PATH, create=False)
            owner = None
            if lock_fd is not None:
                try:
                    owner = read_owner(lock_fd)
                finally:
                    os.close(lock_fd)
            who = f"another downloader ({owner.holder})" if owner is not None else "another downloader"
            self._lost = (f"{who} took over the lock on {self.root.path} after this one had been paused or cut off "
                          f"for more than {self.stale_after:g}s; stopped writing and left the work to it")
        return self._lost

    def _beat_now(self) -> bool:
        """Refresh our heartbeat; False once our record is gone (taken over)."""
        assert self._fd is not None
        now = time.time()
        try:
            os.utime(self._record, (now, now), dir_fd=self._fd, follow_symlinks=False)
        except FileNotFoundError:
            self._lose()
            return False
        except OSError:
            return True  # a hiccup of the filesystem: the next beat tries again
        self._last_beat = time.monotonic()
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat) and self._beat_now():
            pass

    def check(self) -> None:
        """Raise LockLostError unless we still hold the lock; called before every write."""
        if self._lost is not None:
            raise LockLostError(self._lost)
        assert self._fd is not None
        try:
            os.stat(self._record, dir_fd=self._fd, follow_symlinks=False)
        except FileNotFoundError:
            raise LockLostError(self._lose()) from None
        if time.monotonic() - self._last_beat > 2 * self.heartbeat and not self._beat_now():
            raise LockLostError(self._lose())  # we were paused: say we are alive before writing again

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self._fd is None:
            return
        try:
            if self._lost is None:
                os.unlink(self._record, dir_fd=self._fd)
                state_fd = self.root.open_dir(STATE_DIR, create=False)
                if state_fd is not None:
                    with contextlib.suppress(OSError):  # already gone: nothing to tidy
                        os.rmdir(LOCK, dir_fd=state_fd)
                    os.close(state_fd)
        except FileNotFoundError:
            pass  # taken over: the lock is someone else's now
        finally:
            os.close(self._fd)
            self._fd = None
