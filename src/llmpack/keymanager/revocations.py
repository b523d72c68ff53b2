"""Sessions ended by logging out, shared by every replica through one ConfigMap.

A session cookie is valid on every replica until it expires, so logging out must reach them all: the
replica that signs the user out writes the session's id (hashed) with its expiry into the ConfigMap
`keyManager` was given (the chart creates it; the key manager may only get, update and watch it), and
every replica watches it. Entries are only ever added, and each is dropped once its session would have
ended anyway, so the list stays as small as the logouts of one session lifetime (about 50 bytes each).
Without a ConfigMap (a key manager run by hand), logouts are known to this process only.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Mapping, Sequence

import httpx
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from llmpack.keymanager import errors
from llmpack.keymanager.watch import keep_watching

log = logging.getLogger("llmpack.keymanager.revocations")
ATTEMPTS = 20


def _entry(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()[:32]


def parse(data: Mapping[str, str] | None) -> dict[str, float]:
    found = {}
    for key, value in (data or {}).items():
        try:
            found[key] = float(value)
        except ValueError:
            continue
    return found


def pruned(entries: Mapping[str, float], moment: float) -> dict[str, float]:
    return {k: v for k, v in entries.items() if v > moment}


class Revocations:
    def __init__(self, client: AsyncClient | None, where: str) -> None:
        """`where`: "namespace/name" of the shared ConfigMap, or "" for this process only."""
        self.client = client
        self.namespace, _, self.name = where.partition("/")
        self.shared = bool(where)
        self.entries: dict[str, float] = {}
        self.found = not self.shared  # the ConfigMap has been listed and exists

    @property
    def ready(self) -> bool:
        return self.found

    def revoked(self, sid: str) -> bool:
        return _entry(sid) in self.entries

    def _merge(self, data: Mapping[str, str] | None) -> None:
        self.entries = pruned({**self.entries, **parse(data)}, time.time())

    async def revoke(self, sid: str, until: float) -> None:
        """Known here at once; raises errors.Problem (503) when the other replicas could not be told."""
        self.entries[_entry(sid)] = until
        if not self.shared or self.client is None:
            return
        for attempt in range(ATTEMPTS):
            try:
                config_map = await self.client.get(ConfigMap, self.name, namespace=self.namespace)
                moment = time.time()
                entries = pruned({**parse(config_map.data), _entry(sid): until}, moment)
                config_map.data = {k: str(int(v) + 1) for k, v in sorted(entries.items())}
                await self.client.replace(config_map)
                return
            except ApiError as exc:
                if exc.status.code != 409:
                    log.warning("cannot record a logout in ConfigMap %s/%s: %s", self.namespace, self.name,
                                exc.status.message)
                    break
                await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))
            except (httpx.HTTPError, OSError) as exc:
                log.warning("cannot record a logout in ConfigMap %s/%s: %s", self.namespace, self.name, exc)
                break
        raise errors.unavailable(f"you are signed out in this browser, but the other replicas could not be told "
                                 f"(ConfigMap {self.namespace}/{self.name}); sign out again in a minute")

    async def watch(self) -> None:
        """Runs until cancelled (a Service task): the ConfigMap's entries, merged into ours."""
        if not self.shared or self.client is None:
            return

        def reset(items: Sequence[ConfigMap]) -> None:
            self.found = bool(items)
            if not items:
                log.warning("ConfigMap %s/%s (logged-out sessions) does not exist: the chart creates it",
                            self.namespace, self.name)
            for item in items:
                self._merge(item.data)

        def event(type_: str, obj: ConfigMap) -> None:
            self.found = type_ != "DELETED"
            self._merge(obj.data)

        await keep_watching(self.client, ConfigMap, namespace=self.namespace, labels=None,
                            fields={"metadata.name": self.name}, reset=reset, event=event)


def empty_config_map(namespace: str, name: str) -> ConfigMap:
    """What the chart creates (and the tests): the key manager cannot create ConfigMaps."""
    return ConfigMap(metadata=ObjectMeta(name=name, namespace=namespace,
                                         labels={"app.kubernetes.io/name": "llmpack-key-manager"}))
