"""The browser tests' world: a control plane of their own, the test OIDC issuer with its sign-in form, the real
key manager serving its web page, and Debian's Chromium driven by Playwright.

The control plane is the same as the cluster tests' but runs no operator: the tests write each model's status
as the operator would (phase, endpoints) and nothing overwrites it. It starts in about 4 s and stops with the
last browser test, before the cluster tests start theirs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from llmpack.keymanager.kinds import LLMMODEL
from llmpack.keymanager.revocations import empty_config_map
from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import install_ours
from tests.cluster.test_key_manager import make_model
from tests.cluster.waiting import eventually
from tests.oidc.issuer import Issuer
from tests.oidc.service import RunningKeyManager, start_key_manager

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("LLMPACK_CHROMIUM", "/usr/bin/chromium"))
# As the machine notes say: the closed network refuses Chromium's own background connections, so none are made.
# Playwright adds a new empty --user-data-dir of its own to every launch.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "images" / "key-manager"
WAIT_MS = 10_000  # every wait in a page is bounded by this
ADMINS = "llm-admins"
SESSIONS = ("llmpack-system", "key-manager-sessions")
EXTERNAL = "https://llm.example.test"
# (username, groups, display name); each one's password is "<username>-password"
USERS = [("alice", ["ml-team"], "Alice Liddell"), ("bob", ["finance"], "Bob Cratchit"),
         ("ada", [ADMINS], "Ada Lovelace"), ("eve", [], "Eve Nogroup"),
         ("<script>alert('user')</script>", ["ml-team"], "<img src=x onerror=alert('name')>")]


def password(username: str) -> str:
    return f"{username}-password"


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if not CHROMIUM.exists() or not AXE.exists():
        pytest.fail(f"the browser tests need {CHROMIUM} and {AXE}: run `make browser-tools` (tests/browser/README.md)")
    local = LocalCluster(tmp_path_factory.mktemp("browser-cluster"), Path(os.environ.get(
        "LLMPACK_TESTBIN", ROOT / ".testbin")))
    try:
        local.up()
        install_ours(local)
        yield local
    finally:
        local.down(keep_state=bool(os.environ.get("LLMPACK_KEEP_CLUSTER")))


@pytest.fixture(scope="package")
async def client(cluster: LocalCluster) -> AsyncIterator[AsyncClient]:
    api = AsyncClient(KubeConfig.from_file(str(cluster.kubeconfig)), field_manager="llmpack-tests")
    yield api
    await api.close()


async def set_status(client: AsyncClient, namespace: str, name: str, status: dict[str, Any]) -> None:
    """What the operator would report (no operator runs here, so it stays)."""
    await client.patch(LLMMODEL.resource.Status, name, {"status": status}, namespace=namespace,  # type: ignore[attr-defined]
                       patch_type=PatchType.MERGE)


@pytest.fixture(scope="package")
async def models(client: AsyncClient) -> dict[str, tuple[str, str]]:
    """Three models in two namespaces: one public, one for ml-team, one for finance. name -> (namespace, id)."""
    for namespace in ("team-a", "team-b", SESSIONS[0]):
        await client.create(Namespace(metadata=ObjectMeta(name=namespace)))
    await client.create(empty_config_map(*SESSIONS))
    await make_model(client, "team-a", "open", {"public": True}, served="org/open-model")
    await make_model(client, "team-a", "qwen", {"groups": ["ml-team", "research"]}, served="Qwen/Qwen3-8B")
    await make_model(client, "team-b", "ledger", {"groups": ["finance"]}, served="org/ledger-model")
    await set_status(client, "team-a", "open", {"phase": "Ready", "endpoints": {"external": EXTERNAL}})
    await set_status(client, "team-a", "qwen", {"phase": "Ready", "endpoints": {
        "external": EXTERNAL, "internal": "https://llm-internal.example.test"}})
    await set_status(client, "team-b", "ledger", {"phase": "Downloading"})
    return {"open": ("team-a", "org/open-model"), "qwen": ("team-a", "Qwen/Qwen3-8B"),
            "ledger": ("team-b", "org/ledger-model")}


@pytest.fixture(scope="package")
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    for username, groups, name in USERS:
        server.add_user(username, password(username), groups, name=name)
    server.start()
    yield server
    server.stop()


async def start_page_server(cluster: LocalCluster, issuer: Issuer, **overrides: Any) -> RunningKeyManager:
    settings = {"admin_groups": (ADMINS,), "sessions_config_map": "/".join(SESSIONS), "external_url": EXTERNAL}
    return await start_key_manager(cluster.kubeconfig, issuer, login=True, **{**settings, **overrides})


@pytest.fixture(scope="package")
async def km(cluster: LocalCluster, issuer: Issuer, models: dict[str, tuple[str, str]],
             ) -> AsyncIterator[RunningKeyManager]:
    running = await start_page_server(cluster, issuer)

    async def catalogued() -> bool:
        return len(running.service.catalog.all()) == len(models)

    await eventually(catalogued, within=10, what="every model in the key manager's catalog")
    yield running
    await running.stop()


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True,
                                                    timeout=30_000)
        yield launched
        await launched.close()


class Tab:
    """A page in its own browser context (its own cookies), with what its console said."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context, self.page, self.console = context, page, list[str]()
        page.on("console", self._said)
        page.on("dialog", lambda dialog: self.console.append(f"dialog: {dialog.message}"))

    def _said(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console.append(message.text)


@pytest.fixture
async def new_tab(browser: Browser) -> AsyncIterator[Any]:
    """new_tab(width=1280, height=800) -> Tab; every tab is closed after the test. No tab may log a
    Content-Security-Policy violation or open a dialog (an alert would be injected script running)."""
    tabs: list[Tab] = []

    async def make(width: int = 1280, height: int = 800) -> Tab:
        context = await browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(WAIT_MS)
        context.set_default_navigation_timeout(WAIT_MS)
        tab = Tab(context, await context.new_page())
        tabs.append(tab)
        return tab

    yield make
    said = [line for tab in tabs for line in tab.console]
    for tab in tabs:
        await tab.context.close()
    assert not [line for line in said if "Content Security Policy" in line or line.startswith("dialog")], said


def screenshot_dir() -> Path:
    """docs/images/key-manager/ with UPDATE_SCREENSHOTS=1 (`make screenshots`), else a scratch directory."""
    if os.environ.get("UPDATE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    scratch = Path(tempfile.gettempdir()) / "llmpack-screenshots"
    scratch.mkdir(exist_ok=True)
    return scratch
