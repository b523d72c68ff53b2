"""Run the operator: watches (watch.py) keep the Store in step with LLMModels and their children; every
event feeds one work queue whose workers run the same idempotent reconcile (level-triggered, coalesced, with
back-off).

The third-party kinds (InferencePool, SecurityPolicy, AIGatewayRoute, PodMonitor) are watched from the moment
their CRD is Established until it is deleted: then the Store forgets their objects and every model is
reconciled again. Each is watched in the version we write, the newest its CRD serves (a kind written in
several versions, AIGatewayRoute, moves to a newer one when the CRD starts serving it). No watch failure
ends the process. With a webhook port, the admission webhook is served next to it (admission_server.py), for
the warnings that read the operator's view of other objects; every other admission rule is the API server's
own (admission/table.py).

Workers start once every stream has listed: every LLMModel, every child and the established CRDs (with the
children of their kinds) are in the Store. Who owns a model id is then decided over all models at once
(Store.sync), never over the few a watch has delivered so far, and a restarted operator judges each model by
all it has, not by the first pod events (which would flip Ready models to Pending and back). Until then the
webhook does not check model ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightkube import AsyncClient, KubeConfig

from llmpack.api import GROUP, PLURAL, VERSION, names
from llmpack.api.passthrough import PASSTHROUGH_KIND, PASSTHROUGH_PLURAL
from llmpack.assess.claims import ClaimIndex
from llmpack.config import FIELD_MANAGER, Config
from llmpack.kinds import CHILDREN, THIRD_PARTY, Kind, newest_served
from llmpack.operator import crds, health, kube, listeners
from llmpack.operator.apiserver import ApiServer
from llmpack.operator.queue import WorkQueue
from llmpack.operator.reconcile import Reconciler
from llmpack.operator.store import Key, Store
from llmpack.operator.watch import Source, Stream, Watches
from llmpack.render.sizing import SIZE_COMPONENT
from llmpack.wellknown import MANAGED_BY, MANAGED_BY_LABEL

if TYPE_CHECKING:
    from llmpack.admission import webhook as hook
    from llmpack.operator import admission_server
    from llmpack.operator.metrics import Metrics

log = logging.getLogger("llmpack.operator")
MANAGED = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
# The sizing Job's pod: nothing reads it (the Job's conditions and the Lease say all), and each of its steps
# would wake its model for nothing.
UNREAD_PODS = f"app.kubernetes.io/name!={SIZE_COMPONENT}"
PROBLEM_RECHECK = 15.0
GC_YOUNGEST = 10_000
LISTED_RECHECK = 1.0  # on start-up, seconds before streams still listing are counted again
PERSISTS = 3  # failed passes in a row before a model's failure is worth a WARNING
LLMMODELS = Kind(GROUP, VERSION, "LLMModel", PLURAL)
PASSTHROUGHMODELS = Kind(GROUP, VERSION, PASSTHROUGH_KIND, PASSTHROUGH_PLURAL)
CRDS = Kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions")


@dataclass(frozen=True)
class WebhookOptions:
    listen: str
    port: int
    endpoint: hook.Endpoint
    cert_dir: Path
    hosts: tuple[str, ...]


@dataclass
class Operator:
    config: Config
    workers: int = 8
    webhook: WebhookOptions | None = None
    namespaces: Sequence[str] = ()  # empty: every namespace
    store: Store = field(default_factory=Store)
    queue: WorkQueue = field(default_factory=WorkQueue)
    reconciler: Reconciler | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    admission: admission_server.AdmissionServer | None = None
    watches: Watches | None = None
    metrics: Metrics | None = None
    _versions: dict[str, str] = field(default_factory=dict)  # third-party CRD -> the version its kind is watched in

    async def start(self) -> None:
        client = AsyncClient(KubeConfig.from_env(), field_manager=FIELD_MANAGER)
        if self.metrics is not None:  # lightkube offers no hook of its own: its httpx2 client's
            self.metrics.count_requests(client._client._client)
            self.queue.waited = self.metrics.waits.observe
        self.reconciler = Reconciler(client, self.store, self.config, wake=self.queue.add, later=self.queue.add_after)
        # Before any watch: the models are then read, and their status written, with this release's schema.
        await crds.keep_current(client, manage=self.config.manage_crds)
        if self.webhook is not None:
            from llmpack.admission import webhook as hook
            from llmpack.operator import admission_server

            cert = self.serving_cert()
            observe = self.metrics.reviewed if self.metrics is not None else admission_server.unobserved
            self.admission = await admission_server.start(self.webhook.listen, self.webhook.port, cert,
                                                          claims=self._claims, observe=observe)
            await kube.apply(client, hook.configuration(self.webhook.endpoint, cert.ca.read_bytes()))
        # Lists, watches and the writes of every pass: aiohttp, a quarter of httpx2's CPU a request (apiserver.py).
        server = ApiServer(client.config)
        if self.metrics is not None:
            server.observers.append(self.metrics.requested)
        kube.use(client, server)
        self.watches = Watches(server)
        self.reconciler.image_volumes = await kube.image_volumes(server)
        for ns in self._namespaces():
            self.watches.start(f"llmmodels {ns or '*'}", Source(LLMMODELS, ns), self.on_model)
        for child in CHILDREN:
            if child not in THIRD_PARTY:  # those once their CRD is Established (on_crd)
                self._watch_children(child)
        for kind in THIRD_PARTY:  # by name: a cluster's other CRDs are large and none of our business
            self.watches.start(f"crd {kind.crd}", Source(CRDS, fields=f"metadata.name={kind.crd}"), self.on_crd)
        # PassthroughModels once their CRD is there (a chart upgrade does not install new CRDs by itself).
        self.watches.start(f"crd {PASSTHROUGHMODELS.crd}",
                           Source(CRDS, fields=f"metadata.name={PASSTHROUGHMODELS.crd}"), self.on_passthrough_crd)
        self.tasks = [asyncio.create_task(self._start_when_listed(), name="listed")]
        if self.webhook is not None:
            admission_server.quiet_gc()  # last: everything startup made stays out of the collector's way
        if self.config.manage_listeners:
            self.tasks.append(asyncio.create_task(listeners.keep(client, self.config), name="listeners"))

    def _namespaces(self) -> list[str | None]:
        return list(self.namespaces) or [None]

    def _watch_children(self, kind: Kind) -> list[Stream]:
        assert self.watches is not None
        sink = partial(self.on_child, kind.kind)
        labels = f"{MANAGED},{UNREAD_PODS}" if kind.kind == "Pod" else MANAGED
        return [self.watches.start(f"{kind.plural} {ns or '*'}", Source(kind, ns, labels=labels), sink)
                for ns in self._namespaces()]

    def _unwatch_children(self, kind: Kind) -> None:
        """The kind's CRD is gone, and its objects with it: forget them (each wakes its model)."""
        assert self.watches is not None
        for ns in self._namespaces():
            if (stream := self.watches.stop(f"{kind.plural} {ns or '*'}")) is not None:
                stream.forget()
        self.store.drop_kind(kind.kind)  # and what apply responses taught it

    async def _start_when_listed(self) -> None:
        """Once every stream has listed, decide every claim and start the workers. A stream that cannot list
        (RBAC, the API server away) keeps them waiting, and says so in its log and on --health."""
        assert self.watches is not None
        # Looked at again after each list: the CRD lists start the watches of established third-party kinds,
        # which must list too; one stopped meanwhile (its CRD deleted) never will, hence the timeout.
        while pending := [s.synced for s, _ in self.watches.streams.values() if not s.synced.is_set()]:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending[0].wait(), LISTED_RECHECK)
        self.store.sync(kube.now())
        log.info("watching %d LLMModels in %s; %d model ids claimed", len(self.store.models),
                 ", ".join(self.namespaces) if self.namespaces else "every namespace", len(self.store.claim_index))
        self.tasks += [asyncio.create_task(self._work(), name=f"reconcile-worker-{i}") for i in range(self.workers)]

    def _claims(self) -> ClaimIndex | None:
        return self.store.claim_index if self.store.synced else None

    def health(self) -> list[str]:
        return self.watches.failing() if self.watches is not None else ["starting"]

    def serving_cert(self) -> hook.ServingCert:
        from llmpack.admission import webhook as hook

        assert self.webhook is not None
        return hook.serving_cert(self.webhook.cert_dir, self.webhook.hosts)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.watches is not None:
            await self.watches.close()
        if self.admission is not None:
            await self.admission.cleanup()
        if self.reconciler is not None:
            await self.reconciler.client.close()

    async def _work(self) -> None:
        assert self.reconciler is not None
        while True:
            key = await self.queue.get()
            failed, cap, result, started = True, None, "error", time.perf_counter()
            try:
                # A problem the model reports (a missing Secret) is rechecked at least every PROBLEM_RECHECK
                # seconds: nothing we may watch announces its fix. API failures back off up to 5 minutes.
                failed = await self.reconciler.reconcile(key)
                cap, result = PROBLEM_RECHECK, "problem" if failed else "success"
            except asyncio.CancelledError:
                result = ""  # shutting down: not a pass
                raise
            except Exception as exc:  # the API server restarting, a conflict, a timeout: retry with back-off
                # Quietly at first: a 409 or 429 passes on the next try; a failure that persists is told.
                level = logging.WARNING if self.queue.failures(key) + 1 >= PERSISTS else logging.DEBUG
                log.log(level, "%s/%s: reconcile failed (%d in a row), will retry: %s", *key,
                        self.queue.failures(key) + 1, " ".join(str(exc).split()) or type(exc).__name__)
            finally:
                self.queue.done(key, failed=failed, cap=cap)
                if self.metrics is not None and result:
                    self.metrics.reconciled(result, time.perf_counter() - started)

    def on_model(self, type_: str, body: dict[str, Any]) -> None:
        if type_ == "DELETED":
            key, woken = self.store.drop_model(body)
            self._gone(key)
        else:
            echo = self.store.echoes(body)
            key, woken = self.store.put_model(body, kube.now())
            if not echo:
                self.queue.add(key)
        self._wake(woken)

    def on_passthrough(self, type_: str, body: dict[str, Any]) -> None:
        if type_ == "DELETED":
            key, woken = self.store.drop_passthrough(body)
            self._gone(key)
        else:
            key, woken = self.store.put_passthrough(body, kube.now())
            self.queue.add(key)
        self._wake(woken)

    def _gone(self, key: Key) -> None:
        if self.store.owns(key):  # the other kind, of the same name, may now be reconciled
            self.queue.add(key)
            return
        self.queue.forget(key)
        if self.reconciler is not None:
            self.reconciler.forget(key)

    def _wake(self, woken: set[Key]) -> None:
        """A claim began, changed or ended: every other claimant of its ids may gain or lose one."""
        for other in woken:
            if self.store.owns(other):
                self.queue.add(other)

    def on_passthrough_crd(self, type_: str, body: dict[str, Any]) -> None:
        assert self.watches is not None
        conditions = (body.get("status") or {}).get("conditions") or []
        established = type_ != "DELETED" and any(
            c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
        for ns in self._namespaces():
            name = f"passthroughmodels {ns or '*'}"
            if established and not self.watches.running(name):
                self.watches.start(name, Source(PASSTHROUGHMODELS, ns), self.on_passthrough)
            elif not established and (stream := self.watches.stop(name)) is not None:
                stream.forget()

    def on_crd(self, type_: str, body: dict[str, Any]) -> None:
        """A CRD appearing, going or serving other versions changes what can be applied (and in which version)
        and what is watched: wake every model."""
        name = body["metadata"]["name"]
        conditions = (body.get("status") or {}).get("conditions") or []
        established = any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
        present = type_ != "DELETED" and established
        served = tuple(v["name"] for v in (body.get("spec") or {}).get("versions") or [] if v.get("served"))
        if present == (name in self.store.crds) and (not present or served == self.store.served.get(name)):
            return
        kind = next(k for k in THIRD_PARTY if k.crd == name)
        if present:
            self.store.crds.add(name)
            self.store.served[name] = served
            self._watch_served(kind, newest_served(kind, served))
        else:
            self.store.crds.discard(name)
            self.store.served.pop(name, None)
            self._versions.pop(name, None)
            self._unwatch_children(kind)
            log.info("CRD %s is gone: %s are no longer watched", name, kind.plural)
        for key in self.store.owners():
            self.queue.add(key)

    def _watch_served(self, kind: Kind, version: str) -> None:
        """Watch the kind in `version`, the one we write (what a watch delivers must compare with what we
        apply, apiVersion included). A CRD that now serves a newer version, or stopped serving ours, restarts
        the watch in it: the new list hands over the same objects in that version, and reports as deleted any
        the old watch knew that it lacks."""
        before = self._versions.get(kind.crd)
        if before == version:
            return
        assert self.watches is not None
        self._versions[kind.crd] = version
        known: dict[str, Any] = {}
        if before is not None:
            for ns in self._namespaces():
                if (stream := self.watches.stop(f"{kind.plural} {ns or '*'}")) is not None:
                    known[ns or ""] = stream.known
        streams = self._watch_children(replace(kind, version=version))
        for ns, stream in zip(self._namespaces(), streams, strict=True):
            stream.known = dict(known.get(ns or "", {}))
        log.info("CRD %s is established: watching %s in %s%s", kind.crd, kind.plural, version,
                 f" (was {before})" if before else "")

    def on_child(self, kind: str, type_: str, body: dict[str, Any]) -> None:
        key: Key | None
        key = self.store.drop_child(kind, body) if type_ == "DELETED" else self.store.take(kind, body)
        if key is not None and self.reconciler is not None and kind == "ConfigMap" \
                and body["metadata"]["name"] == names.key_metadata(key[1]):
            self.reconciler.keys.stale(key)  # a key manager wrote key metadata (after the Secret): read the keys
        if key is not None and self.store.owns(key):
            self.queue.add(key)


def metered(operator: Operator) -> Metrics:
    from llmpack.operator.metrics import Metrics  # prometheus_client (~2 MB) only with --metrics

    operator.metrics = Metrics(operator.store, lambda: len(operator.queue),
                               lambda: len(operator.watches.failing()) if operator.watches else 0)
    return operator.metrics


async def operate(operator: Operator, health_url: str | None, metrics_url: str | None = None) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly: workers, watches, webhook, connections."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    probe = await health.serve(health_url, operator) if health_url else None
    scrape = await health.listen(health.address(metrics_url), metered(operator).page) if metrics_url else None
    try:
        await operator.start()
        await stopping.wait()
        log.info("stopping")
    finally:
        await operator.stop()
        for server in (probe, scrape):
            if server is not None:
                server.close()
                await server.wait_closed()


def run(config: Config, namespaces: Sequence[str], *, workers: int = 8, health: str | None = None,
        webhook: WebhookOptions | None = None, metrics: str | None = None) -> None:
    import uvloop

    # A collection of the youngest objects every 700 new containers (Python's default) ran ~620 times while 200
    # models became Ready, ~1.1 CPU-s of ~17 (gc.callbacks): decoding each watch event makes hundreds of
    # short-lived dicts. At 10,000, 5 times, 0.03 s; peak RSS did not grow (bench/operator_scale.py).
    gc.set_threshold(GC_YOUNGEST, *gc.get_threshold()[1:])
    operator = Operator(config, workers=workers, webhook=webhook, namespaces=tuple(namespaces))
    # uvloop: 15% more webhook reviews per second, p99 ~10 ms lower (measured with the old webhook).
    uvloop.run(operate(operator, health, metrics))
