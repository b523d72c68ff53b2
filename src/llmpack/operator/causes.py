"""Why something waits, asked of the API server only while it waits: a PVC that is not bound (its
StorageClass, read by name; the Warning Events about it) and the download Job's pod while it sits on its
node (its Warning Events). Nothing is asked in the first GRACE seconds (most PVCs bind by then), and each
object at most every RECHECK seconds: a reconcile in between reuses the answer.

Events are listed, never watched: a watch can be narrowed by kind but not to the objects we care about,
and every PVC Event of the cluster is far more than the few we read. Each list is narrowed by field
selector to the object's uid and to Warnings. An answer we may not have (RBAC) is logged and not known.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.storage_v1 import StorageClass

from llmpack.assess.storage import Unbound
from llmpack.operator import kube
from llmpack.operator.errors import Failure, classify

log = logging.getLogger("llmpack.causes")
GRACE = 5.0
RECHECK = 10.0
T = TypeVar("T")


def age(obj: dict[str, Any], now: datetime.datetime) -> float:
    """Seconds since the object was created (0 when it does not say)."""
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return 0.0
    return (now - datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))).total_seconds()


class Causes:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._answers: dict[tuple[str, str], tuple[float, Any]] = {}  # (what, uid) -> (when asked, answer)

    async def unbound(self, pvc: dict[str, Any]) -> Unbound | None:
        """What the API server says of a PVC that is not bound; None in its first GRACE seconds."""
        if age(pvc, datetime.datetime.now(datetime.UTC)) < GRACE:
            return None
        return await self._remembered(("pvc", pvc["metadata"].get("uid") or pvc["metadata"]["name"]),
                                      lambda: self._unbound(pvc))

    async def pod_warnings(self, pod: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        """The Warning Events of a pod that waits on its node; none in its first GRACE seconds."""
        if age(pod, datetime.datetime.now(datetime.UTC)) < GRACE:
            return ()
        return await self._remembered(("pod", pod["metadata"].get("uid") or pod["metadata"]["name"]),
                                      lambda: self._warnings(pod))

    def due(self, obj: dict[str, Any]) -> float:
        """Seconds until a pass would learn something new of a waiting PVC or pod (`unbound`, `pod_warnings`):
        its grace period over, its last answer old enough to ask again. A pass before then reads only what it
        read last time, so the reconciler looks again then, not sooner."""
        meta = obj["metadata"]
        grace = GRACE - age(obj, datetime.datetime.now(datetime.UTC))
        ref = meta.get("uid") or meta["name"]
        asked = max(self._answers.get((what, ref), (-RECHECK,))[0] for what in ("pvc", "pod"))
        recheck = asked + RECHECK - time.monotonic()
        return max(grace, recheck, 1.0)

    async def _remembered(self, key: tuple[str, str], ask: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        if (known := self._answers.get(key)) is not None and now - known[0] < RECHECK:
            answer: T = known[1]
            return answer
        answer = await ask()
        # Forget what has not been asked about for a while (the object bound, ran or went).
        self._answers = {k: v for k, v in self._answers.items() if now - v[0] < 6 * RECHECK}
        self._answers[key] = (now, answer)
        return answer

    async def _unbound(self, pvc: dict[str, Any]) -> Unbound:
        name = (pvc.get("spec") or {}).get("storageClassName")
        # Read once for every PVC of the class (200 models starting at once mostly share one).
        storage_class, missing = await self._remembered(("class", name), lambda: self._class(name)) if name \
            else (None, False)
        return Unbound(storage_class=storage_class, class_missing=missing, warnings=await self._warnings(pvc))

    async def _class(self, name: str) -> tuple[dict[str, Any] | None, bool]:
        """The StorageClass, and whether it is missing."""
        try:
            return dict((await self.client.get(StorageClass, name)).to_dict()), False
        except ApiError as exc:
            if classify(exc) is Failure.MISSING:
                return None, True
            if classify(exc) is Failure.REFUSED:
                log.warning("StorageClass %s not read: %s", name, exc.status.message)
                return None, False
            raise

    async def _warnings(self, obj: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        meta = obj["metadata"]
        if not meta.get("uid"):
            return ()
        try:
            return tuple(await kube.warnings(self.client, meta["namespace"], meta["uid"]))
        except ApiError as exc:
            if classify(exc) is Failure.REFUSED:
                log.warning("%s/%s: Events not read: %s", meta["namespace"], meta["name"], exc.status.message)
            elif classify(exc) is not Failure.MISSING:
                raise
            return ()
