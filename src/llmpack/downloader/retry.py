"""When to try again, and for how long. A retry budget that only attempts without progress spend: a link
that drops after every MiB still finishes, a server that answers with empty bodies forever fails in bounded
time. A Retry-After we cannot trust (`-1`, `abc`, a week) is treated as absent, and a sane one is clamped."""

from __future__ import annotations

import email.utils
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message

from llmpack.downloader.errors import NetworkError

RETRIES = 6                  # attempts in a row without progress before giving up
MAX_RETRY_AFTER = 60.0       # we wait at most this long on a Retry-After
SANE_RETRY_AFTER = 3600.0    # longer than this is nonsense: back off as if the header were absent
MAX_BACKOFF = 30.0
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_SECONDS = re.compile(r"^\d{1,10}(?:\.\d{1,6})?$")


def retry_after(headers: Mapping[str, str] | Message, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP date), clamped to MAX_RETRY_AFTER;
    None when it is absent or not to be trusted."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if _SECONDS.match(value):
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        seconds = max(when.timestamp() - (time.time() if now is None else now), 0.0)
    return None if seconds > SANE_RETRY_AFTER else min(seconds, MAX_RETRY_AFTER)


def default_backoff() -> float:
    """The first wait between attempts (doubling up to MAX_BACKOFF): LLMPACK_RETRY_SECONDS, default 0.5."""
    try:
        base = float(os.environ.get("LLMPACK_RETRY_SECONDS", "0.5"))
    except ValueError:
        base = 0.5
    return min(max(base, 0.0), MAX_BACKOFF)


@dataclass
class Attempts:
    """Tries of one thing (a file's bytes, an API call). `failed` spends the budget and waits; `progressed`
    (more bytes than ever before) refills it. `pause` waits and may raise to cancel (another worker failed)."""

    what: str
    backoff: float = field(default_factory=default_backoff)
    retries: int = RETRIES
    pause: Callable[[float], None] = time.sleep
    failures: int = 0

    def progressed(self) -> None:
        self.failures = 0

    def failed(self, reason: str, wait: float | None = None) -> None:
        self.failures += 1
        if self.failures > self.retries:
            raise NetworkError(f"{self.what}: {reason}, {self.failures} attempts in a row without progress; "
                               "check HF_ENDPOINT and the network, then run again (it resumes)")
        self.pause(wait if wait is not None else min(self.backoff * 2 ** (self.failures - 1), MAX_BACKOFF))
