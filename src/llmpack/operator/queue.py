"""A work queue of model keys: coalesces bursts of events, never runs one key twice at once, paces each key
(a pass starts at least PACE seconds after its previous one ended), and backs off exponentially when a key
keeps failing (1 s, 2 s, 4 s ... capped at 5 min). A model's first pass goes before the others.

The pace is what makes a burst one pass: a pod going Scheduled, ContainerCreating, Running and Ready, a Job
finishing and our own status echo arrive within a second or two, and each used to wake a pass of its own and,
often, a status write that the next replaced (at 200 models: ~12 status writes a model, 4 of them for
sub-second states). A model's first pass is never delayed; a status may lag the world by up to PACE."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable

from llmpack.operator.store import Key

BASE_DELAY = 1.0
MAX_DELAY = 300.0
PACE = 1.0


class WorkQueue:
    def __init__(self, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY, pace: float = PACE) -> None:
        # A model's first pass (its children and first status) goes before passes of models already started:
        # 200 models applied at once all show their objects and a status sooner.
        self._queue: asyncio.PriorityQueue[tuple[bool, int, Key]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._failures: Counter[Key] = Counter()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._since: dict[Key, float] = {}  # when each queued key was added
        self._ended: dict[Key, float] = {}  # when each key's last pass ended
        self.base_delay, self.max_delay, self.pace = base_delay, max_delay, pace
        self.waited: Callable[[float], None] | None = None  # told how long each key waited (metrics)

    def add(self, key: Key) -> None:
        if key in self._active:
            self._dirty.add(key)  # run once more when the current pass ends
        elif key not in self._queued:
            if (wait := self._ended.get(key, -self.pace) + self.pace - time.monotonic()) > 0.001:
                self.add_after(key, wait)  # the events meanwhile join this one
                return
            self._queued.add(key)
            self._since[key] = time.monotonic()
            self._queue.put_nowait((key in self._ended, next(self._order), key))

    def add_after(self, key: Key, delay: float) -> None:
        timer = self._timers.get(key)
        if timer is not None and timer.when() <= asyncio.get_running_loop().time() + delay:
            return  # an earlier retry is already scheduled
        if timer is not None:
            timer.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> Key:
        _, _, key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        since = self._since.pop(key, None)
        if self.waited is not None and since is not None:
            self.waited(time.monotonic() - since)
        return key

    def done(self, key: Key, *, failed: bool = False, cap: float | None = None) -> float | None:
        """Finish a pass; returns the back-off delay when the key failed and will be retried. `cap` bounds
        the delay below max_delay, for waits on something no watch will announce (a Secret appearing)."""
        self._active.discard(key)
        self._ended[key] = time.monotonic()
        delay = None
        if failed:
            self._failures[key] += 1
            delay = min(cap or self.max_delay, self.max_delay, self.base_delay * 2 ** (self._failures[key] - 1))
            self.add_after(key, delay)
        else:
            self._failures.pop(key, None)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)
        return delay

    def failures(self, key: Key) -> int:
        """Failed passes of the key in a row."""
        return self._failures[key]

    def forget(self, key: Key) -> None:
        self._failures.pop(key, None)
        self._ended.pop(key, None)
        if (timer := self._timers.pop(key, None)) is not None:
            timer.cancel()

    def __len__(self) -> int:
        return self._queue.qsize()
