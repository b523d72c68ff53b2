"""What the connections work on. Each connection is a thread with its own reused buffer. A free connection
first opens the next file not yet started (the largest first) and asks for its first missing part; once
that is answered (and the Hub has said where the file is: its CDN), the file's other parts are handed out,
each to a free connection, from the open file the fewest connections work on: one file gets them all, four
files two each of eight. Spreading them so keeps more of each file's bytes hashed straight from the
receive buffer (verify.py) and fewer writers on one file. The connection that completes a file's last part
verifies it and moves it into place.
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
        self._parts: dict[Partial, deque[Part]] = {}  # open files (in the order taken), their parts to hand out
        self._working: dict[Partial, int] = {}        # connections on each open file
        self._in_flight = 0                           # files taken and not yet in place
        self._stopped = False
        self._cond = threading.Condition()

    def next(self, previous: Partial | None = None) -> Part | RemoteFile | None:
        """The next file to open, else a part to fetch; None once there is nothing left to do (or we stopped).
        `previous`: the file the caller worked on until now."""
        with self._cond:
            if previous is not None and previous in self._working:
                self._working[previous] -= 1
            while not self._stopped:
                if self._files:
                    self._in_flight += 1
                    return self._files.popleft()
                waiting = [file for file, parts in self._parts.items() if parts]
                if waiting:
                    file = min(waiting, key=lambda f: self._working[f])  # the first of the least served
                    self._working[file] += 1
                    return self._parts[file].popleft()
                if not self._in_flight:
                    return None
                self._cond.wait()  # another connection may still hand out parts (a first answer, a refetch)
            return None

    def opened(self, file: Partial) -> None:
        """`file` was opened by a connection, which works on it."""
        with self._cond:
            self._parts[file] = deque()
            self._working[file] = 1

    def add(self, file: Partial, parts: Sequence[Part], *, first: bool = False) -> None:
        with self._cond:
            queue = self._parts.setdefault(file, deque())
            if first:
                queue.extendleft(reversed(parts))
            else:
                queue.extend(parts)
            self._cond.notify_all()

    def finished(self, file: Partial) -> None:
        with self._cond:
            self._in_flight -= 1
            self._parts.pop(file, None)
            self._working.pop(file, None)
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            for file in self._parts:
                file.close()
            self._parts.clear()


def _connection(job: Job, schedule: Schedule, file_done: Callable[[], None]) -> None:
    buffer = memoryview(bytearray(CHUNK))

    def finish(file: Partial) -> None:
        if file.finish():
            schedule.finished(file)
            file_done()
        else:  # its hash was wrong: every part again, before anything else
            schedule.add(file, file.to_fetch(), first=True)

    previous: Partial | None = None
    while (item := schedule.next(previous)) is not None:
        remote = item if isinstance(item, RemoteFile) else item.file.remote
        try:
            if isinstance(item, RemoteFile):
                file = previous = Partial(job, item)
                schedule.opened(file)
                file.hash.catch_up()  # what an earlier run wrote
                todo = file.to_fetch()
                if not todo:
                    finish(file)
                    continue
                if len(todo) > 1:
                    file.on_answer = functools.partial(schedule.add, file, todo[1:])
                part = todo[0]
            else:
                part, file = item, item.file
                previous = file
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
