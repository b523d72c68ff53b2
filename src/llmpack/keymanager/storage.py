"""Reading and writing one model's key objects: Secret `<m>-api-keys` (read by name only) and ConfigMap
`<m>-api-key-metadata`.

Every write is a PUT carrying the resourceVersion it read (the API server refuses it with 409 when someone
wrote in between: then read again and retry), and this process changes one model's objects one request at a
time. The Secret is written before the metadata, so whoever reacts to the metadata (the operator re-reads
the Secret then) finds the Secret already changed. See keys.py for how a crash between the two is repaired.

The Secret is owned by its metadata ConfigMap: deleting the ConfigMap (a retired model's keys) takes the
Secret, and the key manager's Role, with it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import OwnerReference
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.types import CascadeType

from llmpack.api import names
from llmpack.keymanager import errors
from llmpack.keymanager.catalog import ModelRef
from llmpack.keymanager.holdings import Holding, Holdings
from llmpack.keymanager.keys import (
    GONE_ANNOTATION,
    PENDING_ANNOTATION,
    KeyRecord,
    new_client_id,
    now,
    orphans,
    pending_annotation,
    pending_of,
    stamp,
    still_pending,
)

log = logging.getLogger("llmpack.keymanager.storage")
ATTEMPTS = 40  # conflicts come from other writers (another replica, the operator's apply): a few at most


def _encode(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _not_yet(ref: ModelRef) -> errors.Problem:
    return errors.conflict(
        f"model {ref[0]}/{ref[1]} has no key objects yet: the operator creates {names.api_keys(ref[1])} and "
        f"{names.key_metadata(ref[1])} once a replica is Ready and Envoy Gateway's SecurityPolicy CRD is installed; "
        "try again then")


def _set_annotation(obj: Secret | ConfigMap, name: str, value: str | None) -> bool:
    assert obj.metadata is not None
    annotations = dict(obj.metadata.annotations or {})
    if annotations.get(name) == value:
        return False
    if value is None:
        annotations.pop(name, None)
    else:
        annotations[name] = value
    obj.metadata.annotations = annotations or None
    return True


def _adopt(secret: Secret, holding: Holding) -> bool:
    """Make the Secret the dependent of its metadata ConfigMap (and of nothing else)."""
    assert secret.metadata is not None
    owner = OwnerReference(apiVersion="v1", kind="ConfigMap", name=str(holding.config_map.metadata.name),  # type: ignore[union-attr]
                           uid=holding.uid)
    current = secret.metadata.ownerReferences or []
    if [(o.kind, o.uid) for o in current] == [("ConfigMap", holding.uid)]:
        return False
    secret.metadata.ownerReferences = [owner]
    return True


@dataclass
class Repair:
    orphans: set[str]  # keys of crashed creates, removed from the Secret
    stale: set[str]  # records of keys no longer in the Secret (a crashed revoke), removed


class KeyStore:
    def __init__(self, client: AsyncClient, holdings: Holdings, *, orphan_after: float) -> None:
        self.client, self.holdings, self.orphan_after = client, holdings, orphan_after
        self.locks: defaultdict[ModelRef, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._secrets: dict[ModelRef, Secret] = {}  # as last written or read here: never trusted to skip a write

    # -- reads --------------------------------------------------------------------------------------------

    async def secret(self, ref: ModelRef) -> Secret | None:
        try:
            return await self.client.get(Secret, names.api_keys(ref[1]), namespace=ref[0])
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise

    async def _fresh_holding(self, ref: ModelRef) -> Holding | None:
        try:
            config_map = await self.client.get(ConfigMap, names.key_metadata(ref[1]), namespace=ref[0])
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        return self.holdings.put(config_map)

    # -- optimistic writes -------------------------------------------------------------------------------

    async def _update_secret(self, ref: ModelRef, change: Callable[[Secret], bool]) -> Secret | None:
        """Read, change, PUT with the read resourceVersion; again on 409. None when there is no Secret.

        The first try starts from the Secret as this process last wrote or read it (one request fewer per
        write; a stale copy only costs a 409). A decision to write nothing is taken on a fresh read only."""
        remembered = self._secrets.pop(ref, None)
        for attempt in range(ATTEMPTS):
            secret = remembered if remembered is not None else await self.secret(ref)  # popped: ours to change
            if secret is None:
                return None
            if not change(secret):
                if remembered is not None:
                    remembered = None
                    continue
                self._secrets[ref] = secret
                return secret
            remembered = None
            try:
                written = await self.client.replace(secret)
            except ApiError as exc:
                if exc.status.code not in (404, 409):
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                continue
            self._secrets[ref] = written
            return written
        raise errors.conflict(f"{names.api_keys(ref[1])} in {ref[0]} kept changing while we wrote it; try again")

    async def _update_metadata(self, ref: ModelRef, change: Callable[[ConfigMap], bool]) -> ConfigMap | None:
        """As _update_secret, starting from the watched copy (usually current: one read fewer)."""
        known = self.holdings.get(ref)
        config_map = _copy(known.config_map) if known else None
        for attempt in range(ATTEMPTS):
            if config_map is None:
                holding = await self._fresh_holding(ref)
                if holding is None:
                    return None
                config_map = _copy(holding.config_map)
            if not change(config_map):
                return config_map
            try:
                written = await self.client.replace(config_map)
            except ApiError as exc:
                if exc.status.code not in (404, 409):
                    raise
                config_map = None  # someone wrote in between (or it went): read it again
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                continue
            self.holdings.put(written)
            return written
        raise errors.conflict(f"{names.key_metadata(ref[1])} in {ref[0]} kept changing while we wrote it; "
                              "try again")

    # -- what the API does --------------------------------------------------------------------------------

    async def create(self, ref: ModelRef, username: str, api_key: str,
                     record_for: Callable[[str], KeyRecord]) -> KeyRecord:
        """Store a new key: Secret (pending), then its record. `record_for(client_id)` builds the record."""
        async with self.locks[ref]:
            holding = self.holdings.get(ref) or await self._fresh_holding(ref)
            if holding is None:
                raise _not_yet(ref)
            client_id = await self.write_key(ref, holding, username, api_key)
            record = record_for(client_id)
            try:
                await self.write_record(ref, record)
            except BaseException:
                # Never leave a key nobody was given: take it out again (the repair would, later).
                with contextlib.suppress(Exception):
                    await self._update_secret(ref, lambda s: bool(_drop(s, {client_id})))
                raise
            return record

    async def write_key(self, ref: ModelRef, holding: Holding, username: str, api_key: str) -> str:
        """The first half of a create: the key in the Secret, marked pending. Returns its client id."""
        chosen: list[str] = []

        def change(secret: Secret) -> bool:
            data = dict(secret.data or {})
            taken = set(data) | self.holdings.ids_in(ref[0])
            client_id = new_client_id(ref[1], username, taken)
            chosen[:] = [client_id]
            data[client_id] = _encode(api_key)
            current = self.holdings.get(ref) or holding
            pending = still_pending(pending_of(secret.metadata.annotations if secret.metadata else None),
                                    current.records, data)
            pending[client_id] = now()
            secret.data = data
            _set_annotation(secret, PENDING_ANNOTATION, pending_annotation(pending))
            _adopt(secret, current)
            return True

        if await self._update_secret(ref, change) is None:
            raise _not_yet(ref)
        return chosen[0]

    async def write_record(self, ref: ModelRef, record: KeyRecord) -> None:
        """The second half: the record, which makes the key listed (and no longer pending)."""
        def change(config_map: ConfigMap) -> bool:
            config_map.data = {**(config_map.data or {}), record.client_id: record.to_json()}
            return True

        if await self._update_metadata(ref, change) is None:
            raise _not_yet(ref)

    async def remove(self, ref: ModelRef, client_ids: Collection[str]) -> set[str]:
        """Take keys out: from the Secret first (they stop working), then their records. Returns the ids
        that were in either."""
        wanted = set(client_ids)
        found: set[str] = set()
        async with self.locks[ref]:
            def from_secret(secret: Secret) -> bool:
                hit = _drop(secret, wanted)
                found.update(hit)
                return bool(hit)

            await self._update_secret(ref, from_secret)

            def from_metadata(config_map: ConfigMap) -> bool:
                data = dict(config_map.data or {})
                hit = wanted & set(data)
                found.update(hit)
                for client_id in hit:
                    del data[client_id]
                config_map.data = data or None
                return bool(hit)

            await self._update_metadata(ref, from_metadata)
        return found

    async def repair(self, ref: ModelRef, moment: datetime.datetime | None = None) -> Repair | None:
        """Bring one model's objects back in line after a crash: keys of creates that never got their record
        go, records of keys no longer in the Secret go, the Secret is owned by its ConfigMap."""
        moment = moment or now()
        result = Repair(set(), set())
        async with self.locks[ref]:
            holding = await self._fresh_holding(ref)
            if holding is None:
                return None

            def fix(secret: Secret) -> bool:
                data = dict(secret.data or {})
                pending = pending_of(secret.metadata.annotations if secret.metadata else None)
                result.orphans = orphans(pending, holding.records, data, moment, self.orphan_after)
                for client_id in result.orphans:
                    del data[client_id]
                keep = still_pending(pending, holding.records, data)
                secret.data = data or None
                changed = _set_annotation(secret, PENDING_ANNOTATION, pending_annotation(keep))
                return bool(result.orphans) | changed | _adopt(secret, holding)

            secret = await self._update_secret(ref, fix)
            if secret is None:
                return result
            present = set(secret.data or {})
            result.stale = {cid for cid in holding.records if cid not in present}
            if result.stale:
                def drop_stale(config_map: ConfigMap) -> bool:
                    data = {k: v for k, v in (config_map.data or {}).items() if k not in result.stale}
                    changed = len(data) != len(config_map.data or {})
                    config_map.data = data or None
                    return changed

                await self._update_metadata(ref, drop_stale)
        return result

    async def mark_gone(self, ref: ModelRef, since: datetime.datetime | None) -> None:
        """Note (or clear) when the model was first seen gone: the grace period counts from there."""
        await self._update_metadata(
            ref, lambda cm: _set_annotation(cm, GONE_ANNOTATION, stamp(since) if since else None))

    async def retire(self, ref: ModelRef) -> bool:
        """Delete a gone model's key objects: the ConfigMap, and with it (owner references) the Secret and
        the key manager's Role. Returns False when they were already gone."""
        async with self.locks[ref]:
            holding = await self._fresh_holding(ref)
            if holding is None:
                return False
            await self._update_secret(ref, lambda secret: _adopt(secret, holding))
            try:
                await self.client.delete(ConfigMap, names.key_metadata(ref[1]), namespace=ref[0],
                                         cascade=CascadeType.BACKGROUND)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
            self.holdings.drop(holding.config_map)
            return True


def _copy(config_map: ConfigMap) -> ConfigMap:
    """A copy to change: changes replace data, annotations and owner lists whole, never edit them in place."""
    return ConfigMap(metadata=copy.copy(config_map.metadata), data=config_map.data,
                     binaryData=config_map.binaryData, immutable=config_map.immutable)


def _drop(secret: Secret, client_ids: Collection[str]) -> set[str]:
    """Remove these keys (and their pending marks) from the Secret in hand; returns the ids it held."""
    data = dict(secret.data or {})
    hit = set(client_ids) & set(data)
    if not hit:
        return hit
    for client_id in hit:
        del data[client_id]
    secret.data = data or None
    pending = pending_of(secret.metadata.annotations if secret.metadata else None)
    _set_annotation(secret, PENDING_ANNOTATION,
                    pending_annotation({k: v for k, v in pending.items() if k not in hit}))
    return hit
