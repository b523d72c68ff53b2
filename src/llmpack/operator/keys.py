"""Which API-key Secrets exist, and this model's client ids (the data keys of `<m>-api-keys`).

The operator may `get` and `create` Secrets but not list or watch them (it must not see every Secret of
the cluster). So it reads a model's key Secret by name once, and again only when the model's key metadata
ConfigMap changes (it is watched): a key manager writes the Secret first and the metadata after it, on every
key change (see `stale`). A settled cluster therefore costs no read at all. A Secret edited by hand must be
followed by a change to `<m>-api-key-metadata` (docs/routing.md). What it learns lives in Store.api_keys; a
Secret appearing or going changes the SecurityPolicy of every sibling that names the namespace's Secrets, so
those siblings are woken: the ones that hold a policy, or whose pass is running (`names_keys`). The others
read the namespace's Secrets when their policy opens. Waking every sibling made 200 models applied at once
~39,000 wakes (each model's new Secret woke the 199 others), O(models^2).
"""

from __future__ import annotations

from collections.abc import Callable

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from llmpack.api import names
from llmpack.operator.errors import Failure, classify
from llmpack.operator.store import Key, Store


class ApiKeys:
    def __init__(self, client: AsyncClient, store: Store, wake: Callable[[Key], None],
                 names_keys: Callable[[Key], bool] = lambda key: True) -> None:
        self.client, self.store, self._wake, self._names_keys = client, store, wake, names_keys
        self._fresh: set[Key] = set()  # read since their key metadata last changed
        self._secrets: dict[str, frozenset[str]] = {}  # `secrets` by namespace, until a Secret appears or goes

    def secrets(self, namespace: str) -> frozenset[str]:
        """The namespace's key Secrets known to exist (asked by every pass: kept, not counted each time)."""
        if (known := self._secrets.get(namespace)) is None:
            known = self._secrets[namespace] = frozenset(
                names.api_keys(name) for ns, name in self.store.api_keys if ns == namespace)
        return known

    async def client_ids(self, key: Key) -> tuple[tuple[str, ...] | None, str | None]:
        """(the model's client ids, None when its Secret does not exist; why it could not be read, or None)."""
        known = self.store.api_keys.get(key)
        if known is not None and key in self._fresh:
            return known, None
        try:
            secret = await self.client.get(Secret, names.api_keys(key[1]), namespace=key[0])
        except ApiError as exc:
            failure = classify(exc)
            if failure is Failure.MISSING:
                self._drop(key)  # gone (deleted by hand?): siblings stop naming it, the plan creates it again
                return None, None
            if failure is Failure.REFUSED:
                return known, exc.status.message or "refused"
            raise
        ids = tuple(sorted((secret.data or {}).keys()))
        self._learn(key, ids)
        return ids, None

    def created(self, key: Key) -> None:
        """The plan created the model's key Secret, empty."""
        self._learn(key, ())

    def exists(self, key: Key) -> None:
        """The model's key Secret was found to exist (creating it conflicted): read its ids when next needed."""
        if key not in self.store.api_keys:
            self.store.api_keys[key] = ()
            self._secrets.pop(key[0], None)
            self._fresh.discard(key)
            self._wake_siblings(key)

    def _learn(self, key: Key, ids: tuple[str, ...]) -> None:
        self._fresh.add(key)
        new = key not in self.store.api_keys
        self.store.api_keys[key] = ids
        if new:
            self._secrets.pop(key[0], None)  # a new Secret: every sibling's policy now accepts its keys
            self._wake_siblings(key)

    def stale(self, key: Key) -> None:
        """Read this model's keys again at its next reconcile."""
        self._fresh.discard(key)

    def forget(self, key: Key) -> None:
        """The model is gone (its Secret goes with it): siblings stop naming that Secret."""
        self._drop(key)

    def _drop(self, key: Key) -> None:
        self._fresh.discard(key)
        if self.store.api_keys.pop(key, None) is not None:
            self._secrets.pop(key[0], None)
            self._wake_siblings(key)

    def _wake_siblings(self, key: Key) -> None:
        for sibling in self.store.owners():  # LLMModels and PassthroughModels: one pool of keys per namespace
            if sibling[0] == key[0] and sibling != key and self._names_keys(sibling):
                self._wake(sibling)
