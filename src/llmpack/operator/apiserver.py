"""The operator's own connection to the API server for what it does most: its writes (applies, status,
Events) and its watches. aiohttp, whose HTTP parser is C, with lightkube's reading of the kubeconfig (server,
CA, client certificate, token, token file, exec plugin) and lightkube's auth flows.

Why not lightkube's httpx2 client, which the operator keeps for its other requests: against a real
kube-apiserver, one server-side apply costs the client 0.96 ms of CPU through httpx2 and 0.23 ms through
aiohttp (median of 3 x 1500 applies, 20 in flight, bench/apiserver_client.py), and the operator makes ~27
requests a model from create to Ready, plus a watch event for each change of each child.

Two connection pools: one for requests (at most IN_FLIGHT connections; more writes at once wait for one) and
one for streams (a list or a watch each; a watch holds its connection for minutes).
"""

from __future__ import annotations

import contextlib
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import aiohttp
import httpx2
from lightkube.config.client_adapter import user_auth, verify_cluster
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ApiError

IN_FLIGHT = 20  # requests at once: 8 workers, each applying a model's objects together
TIMEOUT = 10.0  # seconds to connect, and between bytes read, as lightkube's default
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
Observer = Callable[[str, int], None]  # (verb: get, list, watch, create, patch..., HTTP status)


@dataclass(frozen=True)
class Answer:
    """A whole response."""

    status: int
    body: bytes
    reason: str

    def error(self, method: str, url: str) -> ApiError:
        """As lightkube raises it, so that errors.classify and every caller read it alike."""
        request = httpx2.Request(method, url)
        return ApiError(request=request, response=httpx2.Response(self.status, content=self.body, request=request))


class Streamed:
    """A response being read: its status, then its body in chunks as they arrive."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.reason = response.reason or ""

    async def read(self) -> bytes:
        return await self._response.read()

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()


class ApiServer:
    """Requests and streams to one API server. Its sessions belong to the event loop that first uses them;
    `close` in that loop."""

    def __init__(self, config: SingleConfig, in_flight: int = IN_FLIGHT) -> None:
        cluster, user = config.cluster, config.user
        self.base = cluster.server.rstrip("/")
        self._ssl: ssl.SSLContext | bool = False
        if self.base.startswith("https:"):
            assert user is not None, "the kubeconfig names no user"
            self._ssl = verify_cluster(cluster, user, config.abs_file)
        self._auth = user_auth(user) if user is not None else None
        self._authorization: dict[str, str] | None = None
        self._renew = False  # a stream was refused with 401: the next request asks the auth flow again
        self._in_flight = in_flight
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self.proxy = _proxy(self.base)
        self.observers: list[Observer] = []

    def _session(self, pool: str) -> aiohttp.ClientSession:
        if (session := self._sessions.get(pool)) is None or session.closed:
            limit = self._in_flight if pool == "requests" else 0  # 0: no limit
            # The environment's proxy is read once (`_proxy`): aiohttp's trust_env would also read ~/.netrc, in
            # a thread, for every request (a fifth of the operator's CPU at 200 models).
            session = self._sessions[pool] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=limit), proxy=self.proxy,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=TIMEOUT, sock_read=TIMEOUT),
                headers={"User-Agent": "llmpack"})
        return session

    async def _authorize(self, renew: bool = False) -> dict[str, str]:
        if self._auth is None:
            return {}
        if self._authorization is None or renew or self._renew:
            self._renew = False
            self._authorization = await _authorization(self._auth, renew)
        return self._authorization

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: bytes | None = None, headers: Mapping[str, str] | None = None) -> Answer:
        """One request, its whole answer read. A 401 asks the auth flow again (a rotated token file, an
        expired exec token) and tries once more, as lightkube does."""
        session = self._session("requests")
        renew = False
        while True:
            async with session.request(method, self.base + path, params=params, data=body,
                                       headers={**(headers or {}), **await self._authorize(renew)}) as response:
                answer = Answer(response.status, await response.read(), response.reason or "")
            self._observe(_VERBS.get(method, method.lower()), answer.status)
            if answer.status != 401 or renew or self._auth is None:
                return answer
            renew = True

    @contextlib.asynccontextmanager
    async def stream(self, path: str, params: Mapping[str, str], read_timeout: float) -> AsyncIterator[Streamed]:
        """A list or a watch (params has `watch`); `read_timeout`: the longest silence between two chunks."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=TIMEOUT, sock_read=read_timeout)
        async with self._session("streams").get(self.base + path, params=params, headers=await self._authorize(),
                                                timeout=timeout) as response:
            self._observe("watch" if "watch" in params else "list", response.status)
            if response.status == 401:
                self._renew = True
            yield Streamed(response)

    def _observe(self, verb: str, status: int) -> None:
        for observer in self.observers:
            observer(verb, status)

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


def _proxy(base: str) -> str | None:
    """The proxy the environment names for the API server (HTTPS_PROXY, NO_PROXY...), as lightkube's client
    and kubectl follow it; usually none."""
    url = urllib.parse.urlsplit(base)
    if url.hostname is None or urllib.request.proxy_bypass(url.hostname):
        return None
    return urllib.request.getproxies_environment().get(url.scheme)


async def _authorization(auth: httpx2.Auth, renew: bool) -> dict[str, str]:
    """The headers lightkube's auth flow sets (it reads a token file, runs an exec plugin, or holds a token);
    `renew`: as after a 401, when the flow reads or runs again."""
    request = httpx2.Request("GET", "https://kubernetes.invalid/")
    flow = auth.async_auth_flow(request)
    try:
        request = await flow.__anext__()
        if renew:
            request = await flow.asend(httpx2.Response(401, request=request))
    except StopAsyncIteration:
        pass
    finally:
        await flow.aclose()
    return {"Authorization": value} if (value := request.headers.get("Authorization")) else {}
