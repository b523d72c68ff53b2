"""One downloader at a time across nodes: a coordination.k8s.io Lease named by the operator.

The holder renews it every few seconds and writes its progress into an annotation, which the operator
mirrors into the LLMModel's status. Another downloader waits while the Lease is fresh; once it has
expired (the holder died), it takes the Lease over and resumes the partial files the holder left.
Takeover uses the Lease's resourceVersion, so of two waiters only one wins.

Every renewal and the release are conditional (read, check we are still the holder, replace with that
resourceVersion), so a holder that was paused past the expiry never writes over its successor's Lease; it
learns it lost the Lease there, or by its own clock once no renewal has succeeded for most of the duration,
and stops writing (`check`, before every write).
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from llmpack.downloader.errors import LockLostError, NetworkError
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
        self._renewed = 0.0  # monotonic time a successful claim or renewal was sent
        self._lost: str | None = None
        self._mutex = threading.Lock()
        self._checking = threading.Lock()

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
        sent = time.monotonic()
        try:
            self.client.replace(lease)
        except ApiError as exc:
            if exc.status.code == 409:
                return False
            raise
        self._renewed = sent
        return True

    def acquire(self, on_wait: Callable[[Owner | None], None] | None = None, poll: float = 1.0) -> None:
        try:
            while True:
                lease = self._get()
                mine_before = lease.spec is not None and lease.spec.holderIdentity == self.holder  # restarted here
                if (_expired(lease) or mine_before) and self._claim(lease):
                    break
                if on_wait is not None and lease.spec is not None and lease.spec.holderIdentity:
                    renewed = lease.spec.renewTime.timestamp() if lease.spec.renewTime else 0.0
                    on_wait(Owner(lease.spec.holderIdentity, "", renewed))
                time.sleep(poll)
        except ApiError as exc:
            raise NetworkError(f"cannot take the Lease {self.namespace}/{self.name}: {exc.status.code} "
                               f"{exc.status.message}; check the model's Role and ServiceAccount") from None
        except httpx.HTTPError as exc:
            raise NetworkError(f"cannot reach the Kubernetes API to take the Lease {self.namespace}/{self.name}: "
                               f"{exc}") from None
        self._renewer = threading.Thread(target=self._renew, name="lease-renew", daemon=True)
        self._renewer.start()

    def _update(self, change: Callable[[Lease], None]) -> bool | None:
        """Apply `change` to the Lease if we still hold it: True done, False lost, None unknown (the API
        server did not answer; a later call tries again)."""
        with self._mutex:
            if self._lost is not None:
                return False
            for _ in range(3):
                sent = time.monotonic()
                try:
                    lease = self.client.get(Lease, self.name, namespace=self.namespace)
                    holder = lease.spec.holderIdentity if lease.spec is not None else None
                    if holder != self.holder:
                        who = f"another downloader ({holder}) holds" if holder else "this downloader no longer holds"
                        self._lost = (f"{who} the Lease {self.namespace}/{self.name}: this one was paused or cut off "
                                      f"for more than {self.duration}s; stopped writing and left the work to it")
                        return False
                    change(lease)
                    self.client.replace(lease)
                except ApiError as exc:
                    if exc.status.code == 409:
                        continue  # changed meanwhile (by the operator, or a successor): read it again
                    return None
                except Exception:  # the transport's errors differ between versions: all mean "no answer"
                    return None
                self._renewed = sent
                return True
            return None

    def _renewal(self, lease: Lease) -> None:
        assert lease.spec is not None
        lease.spec.renewTime = _now()
        if self.progress is not None:
            assert lease.metadata is not None
            lease.metadata.annotations = {**(lease.metadata.annotations or {}),
                                          PROGRESS_ANNOTATION: json.dumps(self.progress())}

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every) and self._update(self._renewal) is not False:
            pass

    def _overdue(self, part: float) -> bool:
        return time.monotonic() - self._renewed > part * self.duration

    def check(self) -> None:
        """Raise LockLostError unless we hold the Lease. Without a renewal for most of its duration (we were
        paused, or the API server is out of reach), renew before writing again: a successor may be near."""
        if self._lost is None and self._overdue(0.75):
            with self._checking:  # one worker renews; the others then find it fresh
                if self._lost is None and self._overdue(0.75) and self._update(self._renewal) is None \
                        and self._overdue(1.0):
                    self._lost = (f"could not renew the Lease {self.namespace}/{self.name} for {self.duration}s; "
                                  "stopped writing, as another downloader may hold it by now")
        if self._lost is not None:
            raise LockLostError(self._lost)

    def release(self) -> None:
        """Let go at once (no one waits out the expiry), leaving the final progress for the operator; a
        Lease we lost is left to its holder."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()

        def let_go(lease: Lease) -> None:
            self._renewal(lease)
            assert lease.spec is not None
            lease.spec.holderIdentity = None
            lease.spec.renewTime = None

        self._update(let_go)
