"""What the connections work on: the missing parts of the files being fetched, in file order, and when none
is left the next file (the largest first). Each connection is a thread with its own reused buffer. A file is
opened by the connection that takes it, which asks for its first missing part; once that is answered (and
the Hub has said where the file is: its CDN), the other parts go to the other connections, straight there.
The connection that completes a file's last part verifies it and moves it into place.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable, Sequence

from llmpack.downloader.errors import from_os_error
from llmpack.downloader.plan import RemoteFile
from llmpack.downloader.transfer import CHUNK, Abandoned, Cancelled, Job, Part, Partial, fill


class Schedule:
    def __init__(self, files: Sequence[RemoteFile]) -> None:
        self._files = deque(sorted(files, key=lambda r: -r.size))
        self._parts: deque[Part] = deque()
        self._open: set[Partial] = set()
        self._in_flight = 0  # files taken and not yet in place
        self._stopped = False
        self._cond = threading.Condition()

    def next(self) -> Part | RemoteFile | None:
        """A part to fetch, else a file to open; None once there is nothing left to do (or we stopped)."""
        with self._cond:
            while not self._stopped:
                if self._parts:
                    return self._parts.popleft()
                if self._files:
                    self._in_flight += 1
                    return self._files.popleft()
                if not self._in_flight:
                    return None
                self._cond.wait()  # another connection may still add parts (a file fetched again)
            return None

    def opened(self, file: Partial, parts: Sequence[Part], *, first: bool = False) -> None:
        with self._cond:
            self._open.add(file)
        self.add(parts, first=first)

    def add(self, parts: Sequence[Part], *, first: bool = False) -> None:
        with self._cond:
            if first:
                self._parts.extendleft(reversed(parts))
            else:
                self._parts.extend(parts)
            self._cond.notify_all()

    def finished(self, file: Partial | None) -> None:
        with self._cond:
            self._in_flight -= 1
            if file is not None:
                self._open.discard(file)
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            for file in self._open:
                file.close()
            self._open.clear()


def _connection(job: Job, schedule: Schedule, file_done: Callable[[], None]) -> None:
    buffer = memoryview(bytearray(CHUNK))

    def finish(file: Partial) -> None:
        if file.finish():
            schedule.finished(file)
            file_done()
        else:  # its hash was wrong: every part again, before anything else
            schedule.opened(file, file.to_fetch(), first=True)

    while (item := schedule.next()) is not None:
        remote = item if isinstance(item, RemoteFile) else item.file.remote
        try:
            if isinstance(item, RemoteFile):
                file = Partial(job, item)
                file.hash.catch_up()  # what an earlier run wrote
                todo = file.to_fetch()
                schedule.opened(file, [])
                if len(todo) > 1:
                    file.on_answer = functools.partial(schedule.add, todo[1:])
                if not todo:
                    finish(file)
                    continue
                part = todo[0]
            else:
                part, file = item, item.file
            try:
                part = fill(job, part, buffer)
            except Abandoned:
                continue
            if file.complete(part):
                finish(file)
        except OSError as exc:
            raise from_os_error(exc, job.root.where(remote.path)) from None


def fetch_all(job: Job, files: Sequence[RemoteFile], connections: int, file_done: Callable[[], None],
              stop: Callable[[], None]) -> None:
    """Fetch every file over at most `connections` connections; the first error (other than the Cancelled
    of the others) is raised once every connection has stopped. `stop` makes the others stop at their next
    chunk (it sets what Job.guard and Job.pause check)."""
    schedule = Schedule(files)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _connection(job, schedule, file_done)
        except BaseException as exc:
            errors.append(exc)
        else:
            return
        stop()
        schedule.stop()

    parts = sum(-(-f.size // job.part_size) if job.part_size and f.size > job.part_size else 1 for f in files)
    threads = [threading.Thread(target=run, name=f"fetch-{i}", daemon=True)
               for i in range(max(1, min(connections, parts)))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        schedule.close()
    if first := next((e for e in errors if not isinstance(e, Cancelled)), None) or next(iter(errors), None):
        raise first
