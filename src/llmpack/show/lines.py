"""One line per model, from its status alone: phase, ready/desired replicas and, while it downloads, a bar
with bytes, rate and time left. `board` is for a terminal (aligned, coloured, never wider than it), `plain`
for a pipe or a file (no escape codes, one `key=value` per fact)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmpack.quantity import format_bytes

FULL, EMPTY = "█", "░"
COLOURS = {"Ready": "32", "Error": "31", "Degraded": "31", "Downloading": "36", "Starting": "33", "Pending": "33"}
_SECONDS = re.compile(r"^(\d+)s$")


@dataclass(frozen=True)
class Row:
    namespace: str
    name: str
    phase: str
    ready: int | None = None
    desired: int | None = None
    done: int | None = None  # bytes, while a download runs
    total: int | None = None
    percent: int | None = None
    rate: str | None = None
    eta: str | None = None
    verifying: bool = False  # the bytes are those of files already there, being checked, not fetched
    message: str = ""  # the Ready condition's, when the model is not Ready

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def downloading(self) -> bool:
        return self.percent is not None or self.done is not None

    @property
    def replicas(self) -> str:
        return f"{self.ready if self.ready is not None else '-'}/{self.desired if self.desired is not None else '-'}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def clean(text: str) -> str:
    """One line without control characters: a message someone wrote into status must not move the cursor."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _text(value: Any) -> str | None:
    return (clean(value) or None) if isinstance(value, str) else None


def row(body: Mapping[str, Any]) -> Row:
    """What `llmpack status` shows of one LLMModel; whatever is missing or malformed is left out."""
    meta, status = _mapping(body.get("metadata")), _mapping(body.get("status"))
    replicas = _mapping(status.get("replicas"))
    download = status.get("download") if isinstance(status.get("download"), Mapping) else None
    phase = _text(status.get("phase")) or "Unknown"
    listed = status.get("conditions")
    conditions = [c for c in listed if isinstance(c, Mapping)] if isinstance(listed, list) else []
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    message = "" if phase == "Ready" else _text(ready.get("message")) or ""
    fields: dict[str, Any] = {}
    if download is not None:
        done, total, percent = _int(download.get("bytesDone")), _int(download.get("bytesTotal")), \
            _int(download.get("percent"))
        if percent is None and done is not None and total:
            percent = 100 * done // total
        fields = {"done": done, "total": total, "percent": max(0, min(100, percent)) if percent is not None else None,
                  "rate": _text(download.get("rate")), "eta": _text(download.get("eta")),
                  "verifying": download.get("phase") == "verifying"}
    return Row(str(meta.get("namespace") or ""), str(meta.get("name") or ""), phase,
               _int(replicas.get("ready")), _int(replicas.get("desired")), message=message, **fields)


def eta(text: str | None) -> str | None:
    """The downloader's "3725s" as "1h02m05s"; anything else as it is."""
    match = _SECONDS.match(text or "")
    if not match:
        return text
    seconds = int(match.group(1))
    hours, minutes, seconds = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s" if minutes \
        else f"{seconds}s"


def _bytes(row: Row) -> str:
    done = format_bytes(row.done) if row.done is not None else "?"
    return f"{done}/{format_bytes(row.total)}" if row.total is not None else done


def plain(row: Row) -> str:
    parts = [row.where, row.phase, f"ready={row.replicas}"]
    if row.downloading:
        step = "verify" if row.verifying else "download"
        parts.append(f"{step}={row.percent if row.percent is not None else '?'}% {_bytes(row)}")
        parts += [f"rate={row.rate}"] if row.rate else []
        parts += [f"eta={eta(row.eta)}"] if row.eta else []
    if row.message:
        parts.append(f"message={row.message}")
    return " ".join(parts)


def bar(percent: int, width: int) -> str:
    filled = percent * width // 100
    return FULL * filled + EMPTY * (width - filled)


def board(rows: Sequence[Row], width: int, *, colour: bool = True) -> list[str]:
    """The terminal view: a header, then a line per model, each at most `width` characters wide."""
    width = max(width, 20)
    name_w = min(max([len(r.where) for r in rows] + [5]), max(width // 3, 10))
    phase_w = max([len(r.phase) for r in rows] + [5])
    lines = [_fit(f"{'MODEL':<{name_w}}  {'PHASE':<{phase_w}}  READY  PROGRESS", width)]
    for r in rows:
        head = f"{_fit(r.where, name_w):<{name_w}}  {r.phase:<{phase_w}}  {r.replicas:<5}  "
        room = width - len(head)
        tail = _progress(r, room) if r.downloading else _fit(clean(r.message), room)
        line = _fit((head + tail).rstrip(), width)
        at = name_w + 2
        if colour and r.phase in COLOURS and line[at:at + len(r.phase)] == r.phase:  # escape codes take no columns
            line = f"{line[:at]}\x1b[{COLOURS[r.phase]}m{r.phase}\x1b[0m{line[at + len(r.phase):]}"
        lines.append(line)
    return lines


def _progress(r: Row, room: int) -> str:
    """The bar and as many facts as fit beside a bar of 10 or more: the bytes go first, then the rate, then
    the time left; the percentage stays."""
    percent = f" {r.percent if r.percent is not None else '?':>3}%" + (" verifying" if r.verifying else "")
    facts = [percent, _bytes(r), r.rate, f"ETA {eta(r.eta)}" if r.eta else None]
    for drop in (None, 1, 2, 3):
        if drop is not None:
            facts[drop] = None
        text = "  ".join(f for f in facts if f)
        if room - len(text) >= 10:
            break
    size = max(0, min(30, room - len(text)))
    return _fit((bar(r.percent or 0, size) if size >= 5 else "") + text, room)


def _fit(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[:width - 1] + "…"
