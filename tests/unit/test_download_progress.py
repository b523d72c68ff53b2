"""The downloader's progress line: rate and time left count only the bytes this run moves."""

from __future__ import annotations

import io
import json

from llmpack.downloader.progress import Progress


def test_bytes_kept_from_the_volume_count_as_done_but_not_toward_the_rate() -> None:
    stream = io.StringIO()
    progress = Progress(100 << 30, 10, stream=stream, kept=96 << 30, bytes_done=96 << 30)
    progress._started -= 10  # ten seconds in
    progress.add(1 << 30)
    progress.emit()
    line = json.loads(stream.getvalue())
    assert (line["bytes_done"], line["percent"]) == (97 << 30, 97)
    assert line["rate"] == "102.4Mi/s"  # 1 GiB in 10 s, not 97 GiB in 10 s
    assert line["eta"] == "30s"
