"""Keep the Store in step with the API server: per watched kind (and namespace) one list, then one watch that
resumes from the last resourceVersion it saw.

A stream asks for bookmarks, so its resourceVersion stays fresh on a quiet kind and a reconnect rarely
costs a relist; a 410 Gone (the version left the server's window) relists, and the objects the new list
lacks are reported deleted. Any other failure (the API server restarting, a 429 while a CRD initialises,
a 404 for a kind whose CRD was just established and is not served yet) is retried with back-off, quietly
at first: WARNING only when it persists. A stream never ends the process; its owner cancels it (a CRD
deleted, shutdown).

Each line is parsed once (msgspec, straight from bytes) and handed on; a stream itself remembers of each
object only its namespace, name and model label, to tell of deletions a relist reveals (as a stub object
that holds just those). Requests go through apiserver.py (aiohttp, with lightkube's reading of the kubeconfig:
service account, client certificates, token refresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from llmpack.kinds import Kind
from llmpack.operator.apiserver import TIMEOUT, ApiServer
from llmpack.wellknown import MODEL_LABEL

log = logging.getLogger("llmpack.watch")
Body = dict[str, Any]
PAGE = 500  # objects per list request
WATCH_SECONDS = (300, 600)  # the server closes a watch after a random time in this range; we resume it
PERSISTS = 3  # consecutive failures before they are worth a WARNING
MAX_BACKOFF = 30.0
_decode = msgspec.json.decode


class Gone(Exception):
    """410: the resourceVersion is older than the server keeps: list again."""


class Failed(Exception):
    """A request that answered with an error status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code


@dataclass(frozen=True)
class Source:
    """What one stream watches."""

    kind: Kind
    namespace: str | None = None  # None: every namespace (or a cluster-scoped kind)
    labels: str | None = None  # a label selector
    fields: str | None = None  # a field selector

    @property
    def path(self) -> str:
        base = f"/api/{self.kind.version}" if not self.kind.group else f"/apis/{self.kind.group}/{self.kind.version}"
        where = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{base}{where}/{self.kind.plural}"

    @property
    def what(self) -> str:
        return f"{self.kind.plural}{f' in {self.namespace}' if self.namespace else ''}"


Sink = Callable[[str, Body], None]  # (ADDED | MODIFIED | DELETED, object)


@dataclass
class Stream:
    """One list+watch loop; `run` until cancelled. `synced` is set after the first complete list."""

    http: ApiServer
    source: Source
    sink: Sink
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    known: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (ns, name) -> its model label
    version: str | None = None
    failures: int = 0
    since: float = 0.0  # monotonic time of the first failure in a row

    async def run(self) -> None:
        while True:
            try:
                if self.version is None:
                    await self._list()
                await self._watch()
                self._recovered()
            except asyncio.CancelledError:
                raise
            except Gone:
                log.debug("%s: resourceVersion %s expired, listing again", self.source.what, self.version)
                self.version = None
            except Exception as exc:  # never fatal: the API server restarting, a CRD not served yet, a timeout
                await self._back_off(exc)

    def forget(self) -> None:
        """Tell the sink every known object is gone (the kind's CRD was deleted)."""
        for ref, model in self.known.items():
            self.sink("DELETED", _stub(ref, model))
        self.known.clear()

    def _params(self, **extra: str) -> dict[str, str]:
        params = dict(extra)
        if self.source.labels:
            params["labelSelector"] = self.source.labels
        if self.source.fields:
            params["fieldSelector"] = self.source.fields
        return params

    async def _list(self) -> None:
        items: list[Body] = []
        params = self._params(limit=str(PAGE))
        while True:
            async with self.http.stream(self.source.path, params, TIMEOUT) as response:
                content = await response.read()
            if response.status == 410:
                raise Gone  # the continue token expired mid-list: start over
            _raise_for(response.status, response.reason, content)
            page = _decode(content)
            items.extend(page.get("items") or ())
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            params["continue"] = meta["continue"]
        self.version = meta.get("resourceVersion")
        listed = {_ref(body): _model(body) for body in items}
        for ref, model in self.known.items():
            if ref not in listed:
                self.sink("DELETED", _stub(ref, model))
        self.known = listed
        for body in items:
            # A list's items of built-in kinds carry no kind or apiVersion (watch events do): without them
            # every object listed would differ from what we apply, and be applied again after each list.
            body.setdefault("apiVersion", self.source.kind.api_version)
            body.setdefault("kind", self.source.kind.kind)
            self.sink("MODIFIED", body)
        self.synced.set()

    async def _watch(self) -> None:
        assert self.version is not None
        seconds = random.randint(*WATCH_SECONDS)
        params = self._params(watch="1", allowWatchBookmarks="true", timeoutSeconds=str(seconds),
                              resourceVersion=self.version)
        # A stream silent past its own end (bookmarks come every minute) is dead.
        async with self.http.stream(self.source.path, params, seconds + 30.0) as response:
            if response.status == 410:
                raise Gone
            if response.status >= 400:
                _raise_for(response.status, response.reason, await response.read())
            self._recovered()
            rest = b""
            async for chunk in response.chunks():
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if line:
                        self._event(_decode(line))

    def _event(self, event: Body) -> None:
        type_, body = event.get("type"), event.get("object") or {}
        if type_ == "ERROR":
            if body.get("code") == 410:
                raise Gone
            raise Failed(int(body.get("code") or 500), str(body.get("message") or "watch error"))
        self.version = (body.get("metadata") or {}).get("resourceVersion") or self.version
        if type_ == "BOOKMARK":
            return
        if type_ == "DELETED":
            self.known.pop(_ref(body), None)
        else:
            self.known[_ref(body)] = _model(body)
        self.sink(str(type_), body)

    def _recovered(self) -> None:
        if self.failures >= PERSISTS:
            log.warning("%s: watching again after %d failures", self.source.what, self.failures)
        self.failures = 0

    async def _back_off(self, exc: Exception) -> None:
        if self.failures == 0:
            self.since = time.monotonic()
        self.failures += 1
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (self.failures - 1)) * random.uniform(0.8, 1.2)
        # A CRD's first seconds (429, 404), a restart of the API server: retried quietly, told when it persists.
        level = logging.WARNING if self.failures == PERSISTS else logging.DEBUG
        log.log(level, "%s: watch failed %d times in %.0f s, retrying in %.1f s: %s", self.source.what,
                self.failures, time.monotonic() - self.since, delay, _one_line(exc))
        await asyncio.sleep(delay)


def _ref(body: Body) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def _model(body: Body) -> str | None:
    return ((body.get("metadata") or {}).get("labels") or {}).get(MODEL_LABEL)


def _stub(ref: tuple[str, str], model: str | None) -> Body:
    """Enough of an object to tell the sink it is gone: what its key and owner are read from (store.py)."""
    meta: Body = {"name": ref[1]}
    if ref[0]:
        meta["namespace"] = ref[0]
    if model is not None:
        meta["labels"] = {MODEL_LABEL: model}
    return {"metadata": meta}


def _raise_for(status: int, reason: str, content: bytes) -> None:
    if status < 400:
        return
    message = reason
    with contextlib.suppress(msgspec.DecodeError, AttributeError):
        message = str(_decode(content).get("message") or message)
    raise Failed(status, message)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass
class Watches:
    """The streams an operator runs, by name; a stream can be started and stopped while others run."""

    http: ApiServer
    streams: dict[str, tuple[Stream, asyncio.Task[None]]] = field(default_factory=dict)
    stopped: set[asyncio.Task[None]] = field(default_factory=set)  # cancelled, not yet finished

    def start(self, name: str, source: Source, sink: Sink) -> Stream:
        if name in self.streams:
            return self.streams[name][0]
        stream = Stream(self.http, source, sink)
        self.streams[name] = (stream, asyncio.create_task(stream.run(), name=f"watch-{name}"))
        return stream

    def stop(self, name: str) -> Stream | None:
        """Stop a stream now: it tells its sink nothing more (the caller may `forget` it)."""
        if (entry := self.streams.pop(name, None)) is None:
            return None
        stream, task = entry
        task.cancel()
        self.stopped.add(task)
        task.add_done_callback(self.stopped.discard)
        return stream

    def running(self, name: str) -> bool:
        return name in self.streams

    def failing(self) -> list[str]:
        """The streams that have failed since they last watched, for the health endpoint."""
        return [f"watch {name}: {stream.failures} failures in a row" for name, (stream, _) in self.streams.items()
                if stream.failures]

    async def close(self) -> None:
        for name in list(self.streams):
            self.stop(name)
        await asyncio.gather(*self.stopped, return_exceptions=True)
        await self.http.close()
