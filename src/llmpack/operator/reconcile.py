"""One idempotent pass for one model, read top to bottom: gather the facts once, decide what the cluster
should hold (render, plan), apply what differs, then report the truth.

Every event for a model or one of its children leads here. The pass reads only the Store (kept by
watches), applies only objects the cluster does not already hold, and writes status only when it
changed; an idle cluster therefore sees no writes at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from pydantic import ValidationError

from llmpack import kinds
from llmpack.api import KIND, Condition, ConditionStatus, LLMModel, LLMModelStatus, Phase, names
from llmpack.api.passthrough import PASSTHROUGH_KIND
from llmpack.assess.adopt import kept_notes
from llmpack.assess.claims import lost
from llmpack.assess.download import job_pod, waits_on_node
from llmpack.assess.hub import SizingState, sizing_state
from llmpack.assess.progress import download_progress
from llmpack.assess.report import Problem
from llmpack.assess.sizing import HubFacts, downloaded_commit, hub_facts, hub_size
from llmpack.assess.status import (
    Observed,
    claim_fields,
    compute,
    job_state,
    only_details_differ,
    ready_replicas,
    settle,
)
from llmpack.assess.storage import pending
from llmpack.config import Config
from llmpack.kinds import THIRD_PARTY
from llmpack.manifests import describe
from llmpack.operator import kube
from llmpack.operator.adoption import Adoption
from llmpack.operator.apply import Held, apply_what_differs
from llmpack.operator.causes import Causes
from llmpack.operator.errors import Failure, classify
from llmpack.operator.keys import ApiKeys
from llmpack.operator.parsed import Parsed
from llmpack.operator.passthrough import Passthroughs, name_conflict, older
from llmpack.operator.routes import Router
from llmpack.operator.store import Key, Store, unwritten
from llmpack.quantity import format_bytes
from llmpack.render import Facts, download_job, plan, render, sizing
from llmpack.render.auth import SIDES
from llmpack.render.plan import reads_keys
from llmpack.render.storage import loading
from llmpack.wellknown import HF_TOKEN_KEY

log = logging.getLogger("llmpack.reconcile")
SECRET_OK_FOR = 60.0
# A status write that changes only details (assess/status.py `only_details_differ`: a sub-step's message,
# download progress) waits until this long after the model's previous write; the pass then due writes
# whatever is true by then. At 200 models starting at once this halves the status writes (a pod's
# Scheduled, ContainerCreating, Running each used to be one).
DETAILS_EVERY = 5.0


class Reconciler:
    def __init__(self, client: AsyncClient, store: Store, config: Config,
                 wake: Callable[[Key], None] = lambda key: None,
                 later: Callable[[Key, float], None] = lambda key, delay: None) -> None:
        self.client, self.store, self.config, self.wake, self.later = client, store, config, wake, later
        self.image_volumes = True  # the cluster mounts image volumes (set from its version at start)
        self.keys = ApiKeys(client, store, wake, self._names_keys)
        self.router = Router(client, store, self.keys)
        self.passthroughs = Passthroughs(client, store, config, self.keys, self.router)
        self.causes = Causes(client)
        self.adoption = Adoption(client, store)
        # Secrets we found usable, and when: pod events wake a model often, and a Secret that was fine a
        # minute ago need not be fetched again for each of them. Problems are never remembered.
        self._secrets_ok: dict[tuple[str, str], float] = {}
        # Namespaces the API server told us are being deleted, and when (UTC): their models go with them.
        self._terminating: dict[str, str] = {}
        self._held = Held()
        self._events: set[asyncio.Task[None]] = set()
        self._status_written: dict[Key, float] = {}  # when (monotonic) each model's status was last written
        self._passing: set[Key] = set()  # the models whose pass is running
        self._models = Parsed(LLMModel.from_body)  # each model's spec, parsed once a change
        self._statuses = Parsed(_parse_status)  # each model's status, parsed once a write
        self._notes: dict[Key, tuple[Hashable, bytes | None, tuple[str, ...]]] = {}  # (stamp, Deployment, notes)

    def _names_keys(self, key: Key) -> bool:
        """Whether a model's SecurityPolicies may name its namespace's key Secrets now: it holds one, or its
        pass is running (and may be about to apply one). Any other model reads them when its policy opens."""
        if kinds.SECURITY_POLICY.crd not in self.store.crds:
            return False
        return key in self._passing or any(self.store.holds(key, kinds.SECURITY_POLICY.kind, names.policy(key[1], side))
                                           for side in SIDES)

    def forget(self, key: Key) -> None:
        """The model is gone: drop what was remembered of it."""
        self.keys.forget(key)
        self._held.forget(key)
        self._status_written.pop(key, None)
        self._models.forget(key)
        self._statuses.forget(key)
        self._notes.pop(key, None)

    def _render(self, model: LLMModel, hold: bool, weights_ready: bool,
                hub: HubFacts) -> tuple[Hashable, list[dict[str, Any]]]:
        """What the cluster should hold, and what it is a function of (apply.Held compares that, not the
        objects: rendering takes ~0.1 ms, keeping every model's objects took ~37 KB a model)."""
        meta = model.metadata
        stamp = None if meta.generation is None else ((meta.uid, meta.generation), hold, weights_ready, hub)
        return stamp, render(model, self.config, hold=hold, weights_ready=weights_ready, hub=hub,
                             image_volumes=self.image_volumes)

    async def reconcile(self, key: Key) -> bool:
        """Returns True when the model should be retried with back-off (it could not progress)."""
        if self._in_terminating_namespace(key):
            return False
        self._passing.add(key)
        try:
            return await self._reconcile(key)
        except ApiError as exc:
            if classify(exc) is Failure.TERMINATING:
                self._terminating[key[0]] = kube.now()
                return False  # the namespace is going away, and the model with it: nothing to do
            raise
        finally:
            # What was just written may open what this pass found closed (the key metadata's uid owns the key
            # manager's Role; a Job that exists is waited on): one more pass, as its watch event once woke.
            self._passing.discard(key)
            if self.store.wrote(key):
                self.wake(key)

    def _in_terminating_namespace(self, key: Key) -> bool:
        """Skip models of a namespace being deleted, unless created after we learned it (a new namespace)."""
        since = self._terminating.get(key[0])
        body = self.store.models.get(key) or self.store.passthroughs.get(key)
        if since is None or body is None:
            return False
        created = body["metadata"].get("creationTimestamp") or ""
        if created > since:  # ISO-8601 UTC stamps compare as strings
            del self._terminating[key[0]]
            return False
        return True

    async def _reconcile(self, key: Key) -> bool:
        body = self.store.models.get(key)
        passthrough = self.store.passthroughs.get(key)
        if passthrough is not None:  # a PassthroughModel; with an LLMModel of the same name, the older of the two
            if body is None or older(passthrough, body):
                if body is not None:
                    await self._report(body, None, Observed(problem=name_conflict(KIND, PASSTHROUGH_KIND, key),
                                                          claim=self.store.model_claim(key)))
                return await self.passthroughs.reconcile(key)
            await self.passthroughs.refuse(passthrough, name_conflict(PASSTHROUGH_KIND, KIND, key))
        if body is None or body["metadata"].get("deletionTimestamp"):
            if body is not None:  # the Serving Pack's finalizer would keep it forever: its operator is gone
                await self.adoption.finish(key, body)
            return False  # owner references let the garbage collector remove the children
        try:
            # Without its resourceVersion, which every status write changes: nothing reads it of the model.
            model = self._models.get(key, unwritten(body))
        except ValidationError as exc:
            # The CRD admitted it but our models do not: report rather than guess.
            invalid = Problem("InvalidSpec", f"{describe(exc.errors()[0])}; fix the manifest and apply it again")
            await self._report(body, None, Observed(problem=invalid, claim=self.store.model_claim(key)))
            return False
        adopting = await self.adoption.begin(key, body)
        # Gather: what the spec alone does not say.
        blocked = await self._external_problem(model)
        job_name = download_job.job_name(model)
        job = job_state(self.store.child(key, "Job", job_name))
        if job == "failed":
            blocked = blocked or Problem("DownloadFailed", f"the download Job {job_name} failed: see `kubectl logs "
                                         f"job/{job_name}`; fix the cause (token, revision, space), then delete the "
                                         "Job to try again")
        pods = self.store.of_kind(key, "Pod")
        facts = await self._facts(key, model, pods)
        lease = self.store.child(key, "Lease", names.download_lease(model.name))
        hub, sized = self._sizing(key, model, lease)
        blocked = blocked or sized.problem
        # Decide.
        stamp, desired = self._render(model, blocked is not None, job == "succeeded", hub)
        routing = plan(model, self.config, facts)
        # Act.
        # The routes' objects depend on none of the children's (their pods come last, from the workloads).
        applied, walked = await asyncio.gather(
            apply_what_differs(self.client, self.store, key, desired, self._held, stamp=stamp, waves=True),
            self.router.walk(key, routing), return_exceptions=True)
        if isinstance(applied, BaseException):
            raise applied
        if isinstance(walked, BaseException):
            raise walked
        problem, routes = applied or blocked, walked
        # Report, with why storage or the download's pod waits when they do (asked only then).
        download, size = download_progress(lease)
        pvc = next(iter(self.store.of_kind(key, "PersistentVolumeClaim")), None)
        fetcher = job_pod(pods, job_name) if job == "running" else None
        observed = Observed(
            pvc=pvc,
            pods=pods,
            problem=problem,
            download=download,
            model_size=size or (format_bytes(hub.bytes) if hub.bytes is not None else None),
            job=job,
            routes=routes,
            claim=self.store.model_claim(key),
            unbound=await self.causes.unbound(pvc) if pvc is not None and pending(pvc) else None,
            job_pod_warnings=await self.causes.pod_warnings(fetcher) if fetcher and waits_on_node(fetcher) else (),
            sizing=sized.waiting,
            resolved_revision=hub.commit or downloaded_commit(lease, model),
            loading=loading(model, self.image_volumes),
            kept=self._kept_notes(key, stamp, desired),
        )
        phase = await self._report(body, model, observed)
        if adopting and phase is Phase.READY:
            await self.adoption.finish(key, body)
        # Nothing we watch says when a waiting PVC or pod gets an Event, or a StorageClass appears: look again
        # when the API server would next be asked (causes.py), not sooner: a pass before then changes nothing.
        # The sizing step is watched (its Job, its report on the Lease): waiting for it needs no look at all.
        # At 200 models, retrying both with back-off made ~6 passes a model (1274 of 4541 to all Ready).
        waiting = [pvc] if pvc is not None and pending(pvc) else []
        if fetcher is not None and waits_on_node(fetcher):
            waiting.append(fetcher)
        if waiting:
            self.later(key, min(self.causes.due(obj) for obj in waiting))
        return problem is not None or routes.failed

    def _kept_notes(self, key: Key, stamp: Hashable, desired: list[dict[str, Any]]) -> tuple[str, ...]:
        """`kept_notes`, worked out again only when the render or the Deployment as kept changed: it decodes
        the Deployment, the largest child, which every pass did (~2% of the operator's CPU at 200 models)."""
        deployment = self.store.kept(key, "Deployment", names.deployment(key[1]))
        memo = self._notes.get(key)
        if stamp is not None and memo is not None and memo[0] == stamp and memo[1] is deployment:
            return memo[2]
        notes = kept_notes(desired, lambda kind, name: self.store.child(key, kind, name))
        self._notes[key] = (stamp, deployment, notes)
        return notes

    def _sizing(self, key: Key, model: LLMModel, lease: dict[str, Any] | None) -> tuple[HubFacts, SizingState]:
        """What the sizing step reported on the Lease (the PVC's size, the commit), and what follows from it."""
        report = hub_size(lease, model)
        sizing_job = self.store.child(key, "Job", sizing.job_name(model))
        pvc = self.store.child(key, "PersistentVolumeClaim", names.storage_pvc(model.name))
        hub = hub_facts(model, report, job_state(sizing_job), sizing_job is not None,
                        self.store.child(key, "Job", download_job.job_name(model)), pvc)
        return hub, sizing_state(model, hub, report, job_state(sizing_job))

    async def _facts(self, key: Key, model: LLMModel, pods: list[dict[str, Any]]) -> Facts:
        """What the routing plan needs to know about the cluster; the key Secret is read only when its group
        would be open."""
        crds = frozenset(kind.crd for kind in THIRD_PARTY if kind.crd in self.store.crds)
        key_metadata = self.store.child(key, "ConfigMap", names.key_metadata(model.name)) or {}
        claim = self.store.model_claim(key)
        facts = Facts(crds=crds, ready=ready_replicas(model, pods),
                      key_metadata_uid=(key_metadata.get("metadata") or {}).get("uid"),
                      claims_known=self.store.synced and claim is not None,
                      taken=lost(claim, self.store.claim_index) if claim is not None else {},
                      served={crd: self.store.served.get(crd, ()) for crd in crds})
        if reads_keys(model, self.config, facts):
            client_ids, unreadable = await self.keys.client_ids(key)
            facts = replace(facts, client_ids=client_ids, keys_unreadable=unreadable)
        return replace(facts, key_secrets=self.keys.secrets(key[0]))

    async def _external_problem(self, model: LLMModel) -> Problem | None:
        """What outside the spec stops this model: today, the token Secret of a gated model."""
        m = model.spec.model
        if not m.auth_secret_name or not m.preload or m.is_oci:
            return None
        assert model.namespace is not None
        key = (model.namespace, m.auth_secret_name)
        if time.monotonic() - self._secrets_ok.get(key, -SECRET_OK_FOR) < SECRET_OK_FOR:
            return None
        message = await kube.secret_problem(self.client, model.namespace, m.auth_secret_name, HF_TOKEN_KEY)
        if message:
            self._secrets_ok.pop(key, None)
            return Problem("SecretMissing", message)
        self._secrets_ok[key] = time.monotonic()
        return None

    async def _report(self, body: dict[str, Any], model: LLMModel | None, observed: Observed) -> Phase | None:
        """Write the status when it changed; returns the phase."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        previous, was = self._statuses.get(key, body.get("status"))
        if model is not None:
            status = compute(model, observed, previous)
        else:
            problem = observed.problem or Problem("InvalidSpec", "")
            status = LLMModelStatus(phase=Phase.ERROR, observed_generation=meta.get("generation"),
                                    conditions=[_error_condition(problem)], **claim_fields(observed.claim))
        status = settle(status, previous, kube.now(), meta.get("generation"))
        wire = status.wire()
        if previous is not None and wire == was:
            return status.phase
        if was is not None and only_details_differ(wire, was):
            wait = self._status_written.get(key, -DETAILS_EVERY) + DETAILS_EVERY - time.monotonic()
            if wait > 0:
                self.later(key, wait)
                return status.phase
        await kube.apply_status(self.client, meta["namespace"], meta["name"], wire)
        self.store.wrote_status(key, wire)
        self._status_written[key] = time.monotonic()
        if previous is None or previous.phase != status.phase:
            ready = status.conditions[0]
            where = f"{meta['namespace']}/{meta['name']}"
            log.info("%s: %s -> %s (%s: %s)", where, previous.phase if previous else "new", status.phase,
                     ready.reason, ready.message, extra={"model": where})
            warning = status.phase in (Phase.ERROR, Phase.DEGRADED)
            self._tell(body, "Warning" if warning else "Normal", str(status.phase), ready.message)
        return status.phase

    def _tell(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record an Event without holding the worker: it is a courtesy, the status just written is the truth."""
        task = asyncio.create_task(self._record(body, type_, reason, message))
        self._events.add(task)  # a task nothing references may be collected before it runs
        task.add_done_callback(self._events.discard)

    async def _record(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        try:
            await kube.record_event(self.client, body, type_, reason, message)
        except Exception as exc:  # refused, timed out, the API server away: the Event is lost, nothing else
            meta = body["metadata"]
            log.debug("%s/%s: event not recorded: %s", meta["namespace"], meta["name"], exc)


def _error_condition(problem: Problem) -> Condition:
    return Condition(type="Ready", status=ConditionStatus.FALSE, reason=problem.reason, message=problem.message)


def _parse_status(raw: Any) -> tuple[LLMModelStatus | None, dict[str, Any] | None]:
    """The status and what it writes (`wire`), or (None, None) when there is none or it is not ours."""
    if not raw:
        return None, None
    try:
        status = LLMModelStatus.model_validate(raw)
    except ValidationError:
        return None, None  # written by something else; ours replaces it
    return status, status.wire()
