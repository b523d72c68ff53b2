"""The liveness endpoint (`llmpack run --health URL`): a plain HTTP answer from the operator's own event loop,
so a loop that is stuck stops answering. 200 and a line per watch stream that is failing, if any. The metrics
endpoint (`--metrics URL`) is served the same way (`listen`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit


class Watched(Protocol):
    def health(self) -> list[str]: ...


def address(url: str, flag: str = "--health", example: str = "http://0.0.0.0:8080/healthz") -> tuple[str, int, str]:
    """(host, port, path) of http://HOST:PORT/PATH; ValueError, in one line, for anything else."""
    try:
        where = urlsplit(url)
        port = where.port
    except ValueError:
        port = None
    if where.scheme != "http" or not port:
        raise ValueError(f"{flag} must look like {example}, not {url}")
    return where.hostname or "0.0.0.0", port, where.path or "/"


async def serve(url: str, operator: Watched) -> asyncio.Server:
    """Listen where `url` says; any other path is 404."""
    def page() -> tuple[str, bytes]:
        return "text/plain", ("ok\n" + "".join(f"{line}\n" for line in operator.health())).encode()

    return await listen(address(url), page)


Page = Callable[[], tuple[str, bytes]]  # (content type, body)


async def listen(where: tuple[str, int, str], page: Page) -> asyncio.Server:
    """Answer GET of one path with `page()`, computed in the event loop; any other path is 404."""
    host, port, path = where

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            target = request.split(b" ", 2)[1].decode("latin-1") if request.count(b" ") >= 2 else ""
            if target.split("?")[0] == path:
                status, (kind, data) = "200 OK", page()
            else:
                status, kind, data = "404 Not Found", "text/plain", b"not found\n"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(data)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)
