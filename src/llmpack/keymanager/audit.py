"""Every create, revoke, expiry and repair: one structured log line, and a Kubernetes Event on the model
(on the key metadata ConfigMap once the model is gone). Who, which client id; never the key."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from llmpack.api import names
from llmpack.keymanager import metrics
from llmpack.keymanager.catalog import ModelEntry, ModelRef
from llmpack.keymanager.keys import now, stamp

log = logging.getLogger("llmpack.keymanager.audit")
COMPONENT = "llmpack-key-manager"
REASONS = {"created": "APIKeyCreated", "revoked": "APIKeyRevoked", "expired": "APIKeyExpired",
           "repaired": "APIKeyRepaired", "retired": "APIKeysRetired", "kept": "APIKeysKept"}


class Auditor:
    def __init__(self, client: AsyncClient | None) -> None:
        self.client = client
        self._pending: set[asyncio.Task[None]] = set()

    def record(self, action: str, *, actor: str, ref: ModelRef, client_id: str | None, model: ModelEntry | None,
               message: str) -> None:
        """Log now; post the Event in the background (a request never waits for it, nor fails with it)."""
        fields: dict[str, Any] = {"action": action, "actor": actor, "namespace": ref[0], "model": ref[1]}
        if client_id is not None:
            fields["clientId"] = client_id
        log.info(message, extra={"audit": fields})
        metrics.KEYS.labels(action).inc()
        if self.client is not None:
            task = asyncio.create_task(self._event(action, ref, model, message))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _event(self, action: str, ref: ModelRef, model: ModelEntry | None, message: str) -> None:
        assert self.client is not None
        if model is not None:
            involved = ObjectReference(apiVersion=model.kind.api_version, kind=model.kind.kind, name=model.name,
                                       namespace=model.namespace, uid=model.uid or None)
        else:
            involved = ObjectReference(apiVersion="v1", kind="ConfigMap", name=names.key_metadata(ref[1]),
                                       namespace=ref[0])
        moment = stamp(now())
        try:
            await self.client.create(Event(
                metadata=ObjectMeta(generateName=f"{involved.name}.", namespace=ref[0]),
                involvedObject=involved, type="Normal", reason=REASONS.get(action, action), message=message[:1024],
                count=1, firstTimestamp=moment, lastTimestamp=moment,  # type: ignore[arg-type]
                source=EventSource(component=COMPONENT), reportingComponent=COMPONENT))
        except ApiError as exc:  # the log line above is the record; the Event is a courtesy
            log.debug("event not recorded for %s/%s: %s", *ref, exc.status.message)

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
