"""A download's progress, from the annotation the downloader holding the Lease writes on it: while the files
already on the volume are verified (phase `verifying`, bytes checked of the bytes to check), then while the
rest is fetched (`downloading`)."""

from __future__ import annotations

import json
from typing import Any

from llmpack.api.status import Download
from llmpack.quantity import format_bytes
from llmpack.wellknown import PROGRESS_ANNOTATION


def download_progress(lease: dict[str, Any] | None) -> tuple[Download | None, str | None]:
    """(progress while a download runs, the model's size once known) from the download Lease."""
    raw = ((lease or {}).get("metadata", {}).get("annotations") or {}).get(PROGRESS_ANNOTATION)
    try:
        progress = json.loads(raw) if raw else None
        if not isinstance(progress, dict):
            return None, None
        total = int(progress["bytes_total"]) if progress.get("bytes_total") is not None else None
        model = int(progress["model_bytes"]) if progress.get("model_bytes") is not None else total
        size = format_bytes(model) if model else None
        phase = progress.get("phase")
        if phase not in ("verifying", "downloading"):
            return None, size
        return Download(phase=phase, bytes_done=int(progress.get("bytes_done", 0)), bytes_total=total,
                        percent=max(0, min(100, int(progress.get("percent", 0)))), rate=progress.get("rate"),
                        eta=progress.get("eta"), holder=progress.get("holder")), size
    except (ValueError, TypeError, KeyError, OverflowError):  # OverflowError: int() of an Infinity
        return None, None  # a hand-edited annotation is not worth an error
