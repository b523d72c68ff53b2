"""HTTP/1.1 GETs for the downloader, on the standard library's http.client: a body is read straight into the
caller's buffer (the socket's one copy), where httpx hands each 64 KiB over through h11 with three more copies
and a dozen Python frames; that, and the ~90 ms httpx takes to import on every start (the warm path too), are
why the downloader has its own. Keep-alive connections are pooled per origin; redirects are followed (the Hub
sends file GETs to its CDN) and the token is dropped when one leads to another origin; HTTP(S)_PROXY, ALL_PROXY
and NO_PROXY are honoured; TLS trusts what httpx would (SSL_CERT_FILE / SSL_CERT_DIR, else certifi's bundle).
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

if TYPE_CHECKING:
    import ssl

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
# A connection's receive buffer (the kernel doubles it). Left to autotuning it grew to 10 MB on loopback: that
# much was served and then lost whenever a downloader was killed or frozen, times sixteen connections, and
# counted against the pod's memory. 2 MiB still carries ~40 MB/s (what a CDN edge gives one connection) at a
# 50 ms round trip.
RECEIVE_BUFFER = 2 << 20
# What breaks a request sent on a kept-alive connection the server had already closed: tried once more.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class TransportError(Exception):
    """No (whole) answer: reset, timed out, cut short, not HTTP. Worth trying again."""


class ConnectError(TransportError):
    """Nothing answers there: refused, no such host, TLS refused. The Hub is down or misnamed."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"cannot fetch {url!r}: not an http(s) URL")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise TransportError(f"cannot fetch {url!r}: bad port") from None
        return cls(scheme, parts.hostname, port)


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    authorization: str | None


def _proxy_for(origin: Origin) -> _Proxy | None:
    """The proxy the environment names for this origin, as httpx (trust_env) and curl read it."""
    if not any(key.lower().endswith("_proxy") for key in os.environ):
        return None
    import urllib.request  # only when a proxy variable is set: it costs a start-up ~15 ms

    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass(origin.host):  # NO_PROXY (on Linux it reads only the environment)
        return None
    url = proxies.get(origin.scheme) or proxies.get("all")
    if not url:
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        return None
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode()
    return _Proxy(parts.hostname, parts.port or 8080, authorization)


def _open_socket(address: tuple[str, int], timeout: float | None,
                 source: tuple[str, int] | None = None) -> socket.socket:
    """socket.create_connection, with the receive buffer set before connecting (the window scale is agreed
    on then)."""
    host, port = address
    failure: OSError | None = None
    for family, kind, proto, _, where in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.settimeout(timeout)
            if source:
                sock.bind(source)
            sock.connect(where)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
    raise failure if failure is not None else OSError(f"{host} has no address")


def _ssl_context() -> ssl.SSLContext:
    import ssl

    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class _Connection:
    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.origin = origin
        proxy = _proxy_for(origin)
        host, port = (proxy.host, proxy.port) if proxy else (origin.host, origin.port)
        self.http: http.client.HTTPConnection
        if origin.scheme == "https":
            self.http = http.client.HTTPSConnection(host, port, timeout=pool.connect_timeout, context=pool.ssl())
            if proxy is not None:
                self.http.set_tunnel(origin.host, origin.port, headers={"Proxy-Authorization": proxy.authorization}
                                     if proxy.authorization else None)
        else:
            self.http = http.client.HTTPConnection(host, port, timeout=pool.connect_timeout)
        self.http._create_connection = _open_socket  # type: ignore[attr-defined]
        # Through a proxy, a plain-HTTP request names the whole URL (a tunnel is asked for by CONNECT instead).
        self.absolute = proxy is not None and origin.scheme == "http"
        self.proxy_authorization = proxy.authorization if self.absolute and proxy else None
        try:
            self.http.connect()
        except (OSError, http.client.HTTPException) as exc:
            self.http.close()
            where = f"{origin.host}:{origin.port}" + (f" through the proxy {host}:{port}" if proxy else "")
            if isinstance(exc, TimeoutError):
                raise TransportError(f"connecting to {where} timed out") from None
            raise ConnectError(f"cannot connect to {where}: {_reason(exc)}") from None
        assert self.http.sock is not None
        self.http.sock.settimeout(pool.timeout)

    def close(self) -> None:
        self.http.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Response:
    """One answer, its body not read yet. Close it (or use `with`): a body read to its end gives the
    connection back to the pool; anything else closes it."""

    def __init__(self, pool: Pool, connection: _Connection, raw: http.client.HTTPResponse, url: str) -> None:
        self._pool, self._connection, self._raw = pool, connection, raw
        self.url = url
        self.status = raw.status
        self.headers = raw.headers

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` with the next bytes of the body (fewer only at its end; 0 once it has ended)."""
        try:
            return self._raw.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise TransportError(f"{type(exc).__name__} ({_reason(exc)})") from None

    def read(self, limit: int) -> bytes:
        """The whole body, at most `limit` bytes (API answers, error pages)."""
        try:
            return self._raw.read(limit)
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise TransportError(f"{type(exc).__name__} ({_reason(exc)})") from None

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None  # type: ignore[assignment]

    def close(self) -> None:
        if self._connection is None:
            return
        if self._raw.isclosed() and not self._raw.will_close and self._connection.http.sock is not None:
            self._pool.give_back(self._connection)
            self._connection = None  # type: ignore[assignment]
        else:
            self._raw.close()
            self._discard()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class Pool:
    """Keep-alive connections by origin, shared by the downloader's threads."""

    def __init__(self, *, timeout: float, connect_timeout: float = 10.0) -> None:
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._idle: dict[Origin, list[_Connection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def ssl(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl is None:
                self._ssl = _ssl_context()
            return self._ssl

    def give_back(self, connection: _Connection) -> None:
        with self._lock:
            self._idle.setdefault(connection.origin, []).append(connection)

    def _take(self, origin: Origin) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(origin)
            return idle.pop() if idle else None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _send(self, url: str, headers: Mapping[str, str]) -> Response:
        """One request, on a pooled connection when there is one (tried again on a new connection if the
        server had closed it meanwhile), and its answer's status and headers."""
        origin = Origin.of(url)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        while True:
            connection = self._take(origin)
            reused = connection is not None
            if connection is None:
                connection = _Connection(self, origin)
            sent = dict(headers)
            if connection.proxy_authorization:
                sent["Proxy-Authorization"] = connection.proxy_authorization
            try:
                connection.http.request("GET", url if connection.absolute else target, headers=sent)
                raw = connection.http.getresponse()
            except _STALE as exc:
                connection.close()
                if reused:
                    continue
                raise TransportError(f"{type(exc).__name__} ({_reason(exc)})") from None
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                raise TransportError(f"{type(exc).__name__} ({_reason(exc)})") from None
            return Response(self, connection, raw, url)

    def get(self, url: str, headers: Mapping[str, str]) -> Response:
        """GET `url`, following redirects; the answer's body is not read yet. Raises TransportError (or
        ConnectError) when no answer comes."""
        origin = Origin.of(url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(url, headers)
            location = response.header("Location")
            if response.status not in REDIRECTS or not location:
                return response
            with response:
                response.read(64 << 10)
            url = urljoin(url, location.strip())
            if Origin.of(url) != origin:  # the token is for the Hub alone, as httpx and requests decide
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise TransportError(f"more than {MAX_REDIRECTS} redirects")

