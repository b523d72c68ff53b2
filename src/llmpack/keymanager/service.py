"""The running key manager: its caches (models, key metadata) kept by watches, the OIDC verifier, the key
store and the sweeper, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from lightkube import AsyncClient
from lightkube.resources.core_v1 import ConfigMap

from llmpack.keymanager.audit import Auditor
from llmpack.keymanager.auth import Authenticator, BearerToken, CredentialSource
from llmpack.keymanager.catalog import Catalog, entry
from llmpack.keymanager.holdings import Holdings
from llmpack.keymanager.kinds import KINDS, ModelKind
from llmpack.keymanager.login import Login, SessionSource
from llmpack.keymanager.oidc import Verifier
from llmpack.keymanager.revocations import Revocations
from llmpack.keymanager.settings import Settings
from llmpack.keymanager.storage import KeyStore
from llmpack.keymanager.sweep import Sweeper
from llmpack.keymanager.watch import keep_watching, namespaces_to_watch
from llmpack.wellknown import MODEL_NAME_LABEL

log = logging.getLogger("llmpack.keymanager")
FIELD_MANAGER = "llmpack-key-manager"


@dataclass
class Service:
    settings: Settings
    client: AsyncClient
    verifier: Verifier
    catalog: Catalog = field(default_factory=Catalog)
    holdings: Holdings = field(default_factory=Holdings)
    extra_sources: list[CredentialSource] = field(default_factory=list)  # e.g. the web page's session
    login: Login | None = None  # the web page's sign-in, when keyManager.login is configured
    # (what, namespace) -> whether its last list succeeded; absent until the first list
    listed: dict[tuple[str, str | None], bool] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        self.auditor = Auditor(self.client)
        self.store = KeyStore(self.client, self.holdings, orphan_after=s.orphan_after)
        self.authenticator = Authenticator([*self.extra_sources, BearerToken(
            self.verifier, username_claim=s.username_claim, groups_claim=s.groups_claim,
            admin_groups=s.admin_groups)])
        self.sweeper = Sweeper(s, self.store, self.holdings, self.catalog, self.auditor,
                               ready=lambda: self.synced, models_known=self.models_known)
        self.user_locks: dict[str, asyncio.Lock] = {}

    def _watched(self) -> list[tuple[str, str | None]]:
        spaces = namespaces_to_watch(self.settings.namespaces)
        return [(what, ns) for what in ("ConfigMap", *(k.kind for k in KINDS)) for ns in spaces]

    @property
    def synced(self) -> bool:
        """Every watch has listed once: the caches hold the cluster's state."""
        return all(key in self.listed for key in self._watched())

    def models_known(self) -> bool:
        """Every model list succeeded last time: a model missing from the catalog is really gone."""
        return all(self.listed.get(key) for key in self._watched())

    def missing(self) -> list[str]:
        """What readiness still waits for, in words."""
        waiting = [] if self.verifier.ready else [f"the OIDC issuer's keys ({self.verifier.jwks_uri})"]
        if self.login is not None and not self.login.revocations.ready:
            where = self.login.revocations
            waiting.append(f"ConfigMap {where.namespace}/{where.name} (ended sessions; the chart creates it)")
        return waiting + [f"a list of {what} in {ns or 'every namespace'}" for what, ns in self._watched()
                          if not self.listed.get((what, ns))]

    def user_lock(self, username: str) -> asyncio.Lock:
        return self.user_locks.setdefault(username, asyncio.Lock())

    async def start(self) -> None:
        self.tasks.append(asyncio.create_task(self.verifier.keep_fresh(self.settings.jwks_refresh), name="jwks"))
        for ns in namespaces_to_watch(self.settings.namespaces):
            for kind in KINDS:
                self.tasks.append(asyncio.create_task(self._watch_models(kind, ns), name=f"watch-{kind.plural}"))
            self.tasks.append(asyncio.create_task(self._watch_metadata(ns), name="watch-key-metadata"))
        self.tasks.append(asyncio.create_task(self.sweeper.run(), name="sweep"))
        if self.login is not None:
            self.tasks.append(asyncio.create_task(self.login.revocations.watch(), name="watch-sessions"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        await self.auditor.drain()
        await self.verifier.close()
        if self.login is not None:
            await self.login.close()
        await self.client.close()

    def _flag(self, what: str, ns: str | None) -> Any:
        def failed(now_failing: bool) -> None:
            self.listed[(what, ns)] = not now_failing
        return failed

    async def _watch_models(self, kind: ModelKind, ns: str | None) -> None:
        def event(type_: str, obj: Any) -> None:
            body = obj.to_dict()
            if type_ == "DELETED":
                self.catalog.drop(kind, body["metadata"].get("namespace", ""), body["metadata"]["name"])
            else:
                self.catalog.put(entry(kind, body))

        await keep_watching(self.client, kind.resource, namespace=ns, labels=None,
                            reset=lambda items: self.catalog.reset(kind, [entry(kind, o.to_dict()) for o in items], ns),
                            event=event, failed=self._flag(kind.kind, ns))

    async def _watch_metadata(self, ns: str | None) -> None:
        def event(type_: str, obj: ConfigMap) -> None:
            (self.holdings.drop if type_ == "DELETED" else self.holdings.put)(obj)

        await keep_watching(self.client, ConfigMap, namespace=ns, labels={MODEL_NAME_LABEL: None},
                            reset=lambda items: self.holdings.reset(items, ns), event=event,
                            failed=self._flag("ConfigMap", ns))


def build(settings: Settings, client: AsyncClient, *, http: Any = None) -> Service:
    verifier = Verifier(settings.oidc_issuer, settings.oidc_jwks_uri, settings.oidc_audience,
                        leeway=settings.leeway, refetch_cooldown=settings.jwks_refetch_cooldown, http=http)
    if not settings.login_enabled:
        return Service(settings, client, verifier)
    login = Login(settings, verifier, Revocations(client, settings.sessions_config_map))
    return Service(settings, client, verifier, extra_sources=[SessionSource(login, settings.admin_groups)],
                   login=login)
