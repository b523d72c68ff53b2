"""Waiting for the cluster to reach a state, with a bounded time and a useful failure message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], *, within: float = 30.0, interval: float = 0.25,
                     what: str = "the condition") -> T:
    """Call `probe` until it returns something truthy; fail with the last value after `within` seconds."""
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = await probe()
        except Exception as exc:  # a 404 while an object is being created is just "not yet"
            last = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within}s waiting for {what}; last seen: {last!r}")
