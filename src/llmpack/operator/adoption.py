"""Models the Serving Pack's operator ran, taken over (assess/adopt.py decides what to write): while its
finalizer is on a model, the model's children are looked up before they are applied (operator/apply.py); its
status fields are handed to ours once; the finalizer goes when the model is Ready or being deleted."""

from __future__ import annotations

import logging
from typing import Any

from lightkube import AsyncClient

from llmpack.api import API_VERSION, KIND
from llmpack.assess.adopt import finalizer_removal, from_pack, takeover, takeover_patch
from llmpack.operator import kube
from llmpack.operator.store import Key, Store

log = logging.getLogger("llmpack.operator")


class Adoption:
    def __init__(self, client: AsyncClient, store: Store) -> None:
        self.client, self.store = client, store
        self._status_taken: set[str] = set()  # uids whose status fields are ours now
        # uids whose pack finalizer we removed: a pass on a copy from before its watch event (a pod event can
        # come first) must neither take the model over again nor patch a finalizer that is gone.
        self._finished: set[str] = set()

    async def begin(self, key: Key, body: dict[str, Any]) -> bool:
        """Whether the model is the pack's still; if so, its status fields become ours (once)."""
        if not from_pack(body) or (body["metadata"].get("uid") or "") in self._finished:
            self.store.adopting.discard(key)
            return False
        if key not in self.store.adopting:
            log.info("%s/%s: taking over from the Serving Pack's operator", *key, extra={"model": "/".join(key)})
        self.store.adopting.add(key)
        uid = body["metadata"].get("uid") or ""
        if uid not in self._status_taken:
            observed = await kube.read(self.client, _model(key))
            if observed is not None and (fields := takeover(observed, "status")) is not None:
                await kube.json_patch(self.client, observed, takeover_patch(observed, fields))
            self._status_taken.add(uid)
        return True

    async def finish(self, key: Key, body: dict[str, Any]) -> None:
        """Remove the pack's finalizer: its children are ours (owner references to this model), so the garbage
        collector does the pack's cleanup, and a deletion no longer waits for an operator that is gone."""
        uid = body["metadata"].get("uid") or ""
        if (patch := finalizer_removal(body)) is None or uid in self._finished:
            return
        await kube.json_patch(self.client, _model(key), patch)
        self.store.adopting.discard(key)
        self._status_taken.discard(uid)
        self._finished.add(uid)
        log.info("%s/%s: taken over from the Serving Pack's operator", *key, extra={"model": "/".join(key)})


def _model(key: Key) -> dict[str, Any]:
    """The LLMModel named by `key`, as a reference for a read or a patch."""
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": key[1], "namespace": key[0]}}
