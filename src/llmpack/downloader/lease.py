"""One downloader at a time across nodes: a coordination.k8s.io Lease named by the operator.

The holder renews it every few seconds and writes its progress into an annotation, which the operator
mirrors into the LLMModel's status. Another downloader waits while the Lease is fresh; once it has
expired (the holder died), it takes the Lease over and resumes the partial files the holder left.
Takeover uses the Lease's resourceVersion, so of two waiters only one wins.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from llmpack.downloader.lock import Holdable, Owner, holder_name
from llmpack.wellknown import PROGRESS_ANNOTATION

DURATION = 15
RENEW_EVERY = 5.0


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _expired(lease: Lease) -> bool:
    spec = lease.spec or LeaseSpec()
    if not spec.holderIdentity or spec.renewTime is None:
        return True
    renewed = spec.renewTime
    if renewed.tzinfo is None:
        renewed = renewed.replace(tzinfo=datetime.UTC)
    return (_now() - renewed).total_seconds() > (spec.leaseDurationSeconds or DURATION)


class LeaseLock(Holdable):
    def __init__(self, client: Client, name: str, namespace: str, *, duration: int = DURATION,
                 renew_every: float = RENEW_EVERY) -> None:
        self.client, self.name, self.namespace = client, name, namespace
        self.duration, self.renew_every = duration, renew_every
        self.holder = holder_name()
        self.progress: Callable[[], dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _get(self) -> Lease:
        try:
            return self.client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            # Normally the operator made it; make it here so a bare pod or a test works too.
            try:
                return self.client.create(Lease(metadata=ObjectMeta(name=self.name, namespace=self.namespace),
                                                spec=LeaseSpec()))
            except ApiError as again:
                if again.status.code != 409:
                    raise
                return self.client.get(Lease, self.name, namespace=self.namespace)

    def _claim(self, lease: Lease) -> bool:
        """Write ourselves in as holder, conditional on the version we read (409: someone else won)."""
        spec = lease.spec or LeaseSpec()
        taking_over = spec.holderIdentity not in (None, "", self.holder)
        lease.spec = LeaseSpec(holderIdentity=self.holder, leaseDurationSeconds=self.duration,
                               acquireTime=_now(), renewTime=_now(),
                               leaseTransitions=(spec.leaseTransitions or 0) + (1 if taking_over else 0))
        try:
            self.client.replace(lease)
        except ApiError as exc:
            if exc.status.code == 409:
                return False
            raise
        return True

    def acquire(self, on_wait: Callable[[Owner | None], None] | None = None, poll: float = 1.0) -> None:
        while True:
            lease = self._get()
            mine_before = lease.spec is not None and lease.spec.holderIdentity == self.holder  # restarted here
            if (_expired(lease) or mine_before) and self._claim(lease):
                break
            if on_wait is not None and lease.spec is not None and lease.spec.holderIdentity:
                renewed = lease.spec.renewTime.timestamp() if lease.spec.renewTime else 0.0
                on_wait(Owner(lease.spec.holderIdentity, "", renewed))
            time.sleep(poll)
        self._renewer = threading.Thread(target=self._renew, name="lease-renew", daemon=True)
        self._renewer.start()

    def _patch(self, body: dict[str, Any]) -> None:
        self.client.patch(Lease, self.name, body, namespace=self.namespace)

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every):
            body: dict[str, Any] = {"spec": {"renewTime": _now().isoformat().replace("+00:00", "Z")}}
            if self.progress is not None:
                body["metadata"] = {"annotations": {PROGRESS_ANNOTATION: json.dumps(self.progress())}}
            with contextlib.suppress(ApiError):  # the next renewal tries again; a Lease outlives missed beats
                self._patch(body)

    def release(self) -> None:
        """Let go at once (no one waits out the expiry), leaving the final progress for the operator."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        body: dict[str, Any] = {"spec": {"holderIdentity": None, "renewTime": None}}
        if self.progress is not None:
            body["metadata"] = {"annotations": {PROGRESS_ANNOTATION: json.dumps(self.progress())}}
        with contextlib.suppress(ApiError):  # it expires by itself
            self._patch(body)
