"""The real key manager (its ASGI app under uvicorn, on a free 127.0.0.1 port) in the tests' event loop,
signing users in against the test issuer and talking to the test cluster."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from lightkube import AsyncClient, KubeConfig

from llmpack.keymanager import Service, Settings, build, create_app, pages
from llmpack.keymanager.service import FIELD_MANAGER
from llmpack_dev.cluster import free_port
from tests.oidc.issuer import Client, Issuer

# Quick enough for tests: expiry within a second or two, repairs on every sweep.
FAST = {"sweep_interval": 0.5, "repair_interval": 0.5, "orphan_after": 1.0, "jwks_refetch_cooldown": 0.0}
# The web page's confidential client at the test issuer (every key manager started with login=True is one of
# its redirect URIs), and the session key its replicas share.
CLIENT_ID = "llmpack-key-manager"
CLIENT_SECRET = "a-client-secret-for-tests"
SESSION_KEY = "a-session-key-of-tests-0123456789abcdef"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner keeps its own signal handlers
        yield


@dataclass
class RunningKeyManager:
    url: str
    service: Service
    server: _Server
    task: asyncio.Task[None]
    issuer: Issuer

    def http(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    def as_user(self, username: str, groups: list[str] | None = None, **claims: Any) -> httpx.AsyncClient:
        return self.http(self.issuer.token(username, groups, **claims))

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 30)


def settings_for(issuer: Issuer, **overrides: Any) -> Settings:
    return Settings(oidc_issuer=issuer.url, oidc_jwks_uri=issuer.jwks_uri, **{**FAST, **overrides})


async def start_key_manager(kubeconfig: Path, issuer: Issuer, *, wait_ready: bool = True, login: bool = False,
                            **overrides: Any) -> RunningKeyManager:
    """`login`: the web page's sign-in with the test issuer (cookies without Secure: the tests speak http)."""
    client = AsyncClient(KubeConfig.from_file(str(kubeconfig)), field_manager=FIELD_MANAGER)
    port = free_port()
    if login:
        registered = issuer.clients.setdefault(CLIENT_ID, Client(CLIENT_SECRET, []))
        registered.redirect_uris.append(f"http://127.0.0.1:{port}/auth/callback")
        overrides = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "session_keys": (SESSION_KEY,),
                     "secure_cookies": False, **overrides}
    service = build(settings_for(issuer, **overrides), client)
    server = _Server(uvicorn.Config(create_app(service, routers=[pages.router]), host="127.0.0.1", port=port,
                                    log_config=None, access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve())
    running = RunningKeyManager(f"http://127.0.0.1:{port}", service, server, task, issuer)
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=running.url, timeout=5) as http:
        while True:
            if task.done():
                task.result()  # raises what stopped it
            try:
                answer = await http.get("/readyz" if wait_ready else "/healthz")
                if answer.status_code == 200:
                    return running
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                await running.stop()
                raise AssertionError(f"the key manager did not get ready: {service.missing()}")
            await asyncio.sleep(0.05)
