"""The operator's aiohttp connection (operator/apiserver.py) keeps lightkube's credentials' behaviour: a
rotated token file is read again after a 401, a wrong token is not retried forever, the environment's proxy
is followed unless NO_PROXY names the server. Against an HTTP server on loopback that checks the token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from lightkube import KubeConfig
from lightkube.config.kubeconfig import SingleConfig

from llmpack.operator.apiserver import ApiServer, _proxy
from llmpack.operator.errors import Failure, classify

GOOD = "Bearer rotated"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP server that answers 401 to any token but the rotated one, and records what it was sent."""
    seen: list[str] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization", ""))
        if seen[-1] != GOOD:
            return web.json_response({"kind": "Status", "code": 401, "message": "Unauthorized"}, status=401)
        if "watch" in request.query:
            stream = web.StreamResponse()
            await stream.prepare(request)
            for n in range(3):
                await stream.write(b'{"type":"ADDED","object":{"n":%d}}\n' % n)
            return stream
        return web.json_response({"kind": "ConfigMap", "path": request.path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def config(url: str, **user: str) -> SingleConfig:
    single = KubeConfig.from_dict({
        "clusters": [{"name": "c", "cluster": {"server": url}}], "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"}).get()
    assert single is not None
    return single


async def test_a_rotated_token_file_is_read_again_after_a_401(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, seen = server
    token = tmp_path / "token"
    token.write_text("expired\n")
    api = ApiServer(config(url, tokenFile=str(token)))
    try:
        before = await api.request("GET", "/api/v1/namespaces/a/configmaps/b")
        token.write_text("rotated\n")  # the kubelet rotates it
        after = await api.request("GET", "/api/v1/namespaces/a/configmaps/b")
        assert (before.status, after.status) == (401, 200)
        assert seen == ["Bearer expired", "Bearer expired", "Bearer expired", GOOD]
        await api.request("GET", "/api/v1/namespaces/a/configmaps/b")
        assert seen[-1] == GOOD
        assert len(seen) == 5
    finally:
        await api.close()


async def test_a_refused_token_is_tried_again_once_and_reads_as_lightkube_s_error(
        server: tuple[str, list[str]]) -> None:
    url, seen = server
    api = ApiServer(config(url, token="wrong"))
    try:
        answer = await api.request("PATCH", "/api/v1/namespaces/a/configmaps/b", body=b"{}")
        assert answer.status == 401
        assert len(seen) == 2
        assert classify(answer.error("PATCH", url)) is Failure.RETRY
    finally:
        await api.close()


async def test_a_watch_stream_arrives_in_chunks_and_requests_are_counted(server: tuple[str, list[str]]) -> None:
    url, _ = server
    api = ApiServer(config(url, token="rotated"))
    counted: list[tuple[str, int]] = []
    api.observers.append(lambda verb, code: counted.append((verb, code)))
    try:
        async with api.stream("/api/v1/pods", {"watch": "1"}, 5.0) as response:
            body = b"".join([chunk async for chunk in response.chunks()])
        await api.request("POST", "/api/v1/namespaces/a/events", body=b"{}")
        async with api.stream("/api/v1/pods", {"limit": "500"}, 5.0) as response:
            await response.read()
    finally:
        await api.close()
    assert body.count(b"\n") == 3
    assert b'"n":2' in body
    assert counted == [("watch", 200), ("create", 200), ("list", 200)]


def test_the_environment_s_proxy_is_followed_unless_no_proxy_names_the_server(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "10.96.0.1,.cluster.local")
    assert _proxy("https://api.example:6443") == "http://proxy.example:3128"
    assert _proxy("https://10.96.0.1:443") is None
    assert _proxy("https://kubernetes.default.svc.cluster.local") is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert _proxy("https://api.example:6443") is None
