"""What happens with nobody asking: expired keys go (every sweep interval, so within it), a deleted model's
keys are kept for the grace period and then retired, and crashed writes are repaired (at start, then every
repair interval; the only time every key Secret is read)."""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable

from llmpack.keymanager.audit import Auditor
from llmpack.keymanager.catalog import Catalog, ModelRef
from llmpack.keymanager.holdings import Holdings
from llmpack.keymanager.keys import expired, now, stamp
from llmpack.keymanager.settings import Settings
from llmpack.keymanager.storage import KeyStore

log = logging.getLogger("llmpack.keymanager.sweep")
ACTOR = "llmpack-key-manager"


class Sweeper:
    def __init__(self, settings: Settings, store: KeyStore, holdings: Holdings, catalog: Catalog, auditor: Auditor,
                 *, ready: Callable[[], bool], models_known: Callable[[], bool]) -> None:
        self.settings, self.store, self.holdings = settings, store, holdings
        self.catalog, self.auditor = catalog, auditor
        self.ready = ready  # the caches hold the cluster's state
        self.models_known = models_known  # every kind's list succeeded: a model missing here is really gone
        self.passes = 0

    async def run(self) -> None:
        while not self.ready():  # noqa: ASYNC110 (readiness is a property of several watches, polled)
            await asyncio.sleep(0.2)
        last_repair = float("-inf")
        while True:
            repair = time.monotonic() - last_repair >= self.settings.repair_interval
            await self.sweep(repair=repair)
            if repair:
                last_repair = time.monotonic()
            await asyncio.sleep(self.settings.sweep_interval)

    async def sweep(self, *, repair: bool = False) -> None:
        moment = now()
        for ref in list(self.holdings.held):
            try:
                if repair:
                    await self._repair(ref)
                await self._expire(ref, moment)
                if self.models_known():
                    await self._follow_model(ref, moment)
            except Exception as exc:  # one model's trouble (an API hiccup) never stops the others
                log.warning("sweeping the keys of %s/%s: %s", *ref, exc)
        self.passes += 1

    async def _expire(self, ref: ModelRef, moment: datetime.datetime) -> None:
        holding = self.holdings.get(ref)
        due = expired(holding.records.values(), moment) if holding else []
        if not due:
            return
        removed = await self.store.remove(ref, {r.client_id for r in due})
        for record in due:
            if record.client_id in removed:
                self.auditor.record("expired", actor=ACTOR, ref=ref, client_id=record.client_id,
                                    model=self.catalog.of(ref),
                                    message=f"API key {record.client_id} of {record.creator} expired at "
                                    f"{stamp(record.expires_at or moment)} and was removed")

    async def _follow_model(self, ref: ModelRef, moment: datetime.datetime) -> None:
        holding = self.holdings.get(ref)
        if holding is None:
            return
        present, since = self.catalog.exists(ref), holding.gone_since
        if present and since is not None:
            await self.store.mark_gone(ref, None)
            self.auditor.record("kept", actor=ACTOR, ref=ref, client_id=None, model=self.catalog.of(ref),
                                message=f"model {ref[1]} is back: its {len(holding.records)} API keys are kept")
        elif not present and since is None:
            await self.store.mark_gone(ref, moment)
            log.info("model %s/%s is gone: its %d keys are kept until %s unless it comes back", *ref,
                     len(holding.records), stamp(moment + datetime.timedelta(seconds=self.settings.grace_period)))
        elif not present and since is not None and (moment - since).total_seconds() >= self.settings.grace_period \
                and await self.store.retire(ref):
            self.auditor.record("retired", actor=ACTOR, ref=ref, client_id=None, model=None,
                                message=f"model {ref[1]} has been gone since {stamp(since)} (grace period "
                                f"{self.settings.grace_period:.0f}s): its {len(holding.records)} API keys "
                                "and their objects were deleted")

    async def _repair(self, ref: ModelRef) -> None:
        result = await self.store.repair(ref)
        if result is None:
            return
        for client_id in sorted(result.orphans):
            self.auditor.record("repaired", actor=ACTOR, ref=ref, client_id=client_id, model=self.catalog.of(ref),
                                message=f"API key {client_id} was written but its create never finished (no "
                                "record): removed, nobody was given it")
        for client_id in sorted(result.stale):
            self.auditor.record("repaired", actor=ACTOR, ref=ref, client_id=client_id, model=self.catalog.of(ref),
                                message=f"API key {client_id} is no longer in the Secret: its record was removed")
