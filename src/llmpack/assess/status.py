"""The truth about an LLMModel, computed from what the cluster holds. Pure: no I/O, time passed in.

phase: Pending (the Hub not asked for the size yet, storage not bound, the download's pod not running yet,
nothing scheduled) -> Downloading
(the download Job's pod or a downloader/loader init container runs) -> Starting (weights present, vLLM not
ready) -> Ready (ready >= desired); Degraded when some but not all replicas serve or vLLM crashed after
starting; Error when the spec cannot be applied or cannot make progress, e.g. a missing Secret or a failed
download (the Ready condition says why and what to do). A rollout to new weights is not a failure: it
shows Downloading/Starting again.

The phase is the first rung of LADDER that holds: small named checks over one gathered input (`Seen`),
evaluated once, in the order a reader would ask them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

from llmpack.api import Condition, ConditionStatus, LLMModel, LLMModelStatus, Phase, Replicas
from llmpack.api.status import Download, EndpointStatus
from llmpack.assess.claims import Claim
from llmpack.assess.download import DownloadPod, download_pod, job_pod, unschedulable
from llmpack.assess.report import Problem, Report
from llmpack.assess.routing import Routes
from llmpack.assess.storage import Unbound, storage_report, uses_pvc
from llmpack.quantity import format_bytes
from llmpack.render.download_job import job_name
from llmpack.render.meta import identity
from llmpack.render.storage import DOWNLOADER, LOADER
from llmpack.wellknown import IDENTITY_ANNOTATION

LOADERS = (DOWNLOADER, LOADER)


@dataclass(frozen=True)
class Observed:
    """What the operator saw of one model's children in this reconcile."""

    pvc: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    problem: Problem | None = None  # the spec cannot be applied or cannot progress
    download: Download | None = None
    model_size: str | None = None
    job: str | None = None  # the download Job for the current weights: "running", "succeeded" or "failed"
    routes: Routes | None = None  # InferencePoolReady, ExternalEndpointReady, InternalEndpointReady
    claim: Claim | None = None  # its claim on its model id, recorded so that a restart decides as before
    unbound: Unbound | None = None  # what the API server says of the PVC while it is not bound
    job_pod_warnings: tuple[dict[str, Any], ...] = ()  # Warning Events of the download Job's pod while it waits
    sizing: Problem | None = None  # what the model waits for from the Hub before its PVC or download
    resolved_revision: str | None = None  # the commit the weights are (or are being) fetched at
    loading: str | None = None  # how the weights reach /model-cache (render/storage.py loading)
    kept: tuple[str, ...] = ()  # what of an immutable field the cluster keeps from the Serving Pack, and why


def _init_state(pod: dict[str, Any]) -> str:
    """'running', 'done', 'failed' or 'waiting' for the pod's download/copy step ('done' when it has none)."""
    statuses = [s for s in (pod.get("status") or {}).get("initContainerStatuses") or [] if s.get("name") in LOADERS]
    declared = [c for c in pod.get("spec", {}).get("initContainers") or [] if c.get("name") in LOADERS]
    if not declared:
        return "done"
    if not statuses:
        return "waiting"
    state = statuses[0].get("state") or {}
    if "running" in state:
        return "running"
    if "terminated" in state:
        return "done" if state["terminated"].get("exitCode") == 0 else "failed"
    last = statuses[0].get("lastState") or {}
    if "terminated" in last and last["terminated"].get("exitCode") != 0:
        return "failed"  # waiting to restart after a failure: CrashLoopBackOff
    return "waiting"


def _crashed(pod: dict[str, Any]) -> bool:
    """vLLM restarted and is not ready: it failed after having started."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(s.get("restartCount", 0) > 0 and not s.get("ready") for s in statuses)


def _unschedulable(pods: list[dict[str, Any]]) -> str | None:
    return next((why for pod in pods if (why := unschedulable(pod)) is not None), None)


def _is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def ready_replicas(model: LLMModel, pods: list[dict[str, Any]]) -> int:
    return sum(1 for p in _current_pods(model, pods) if _is_ready(p))


def _current_pods(model: LLMModel, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods of the current weights identity that are not being deleted (a rollout's old pods don't count)."""
    want = identity(model)
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and (p["metadata"].get("annotations") or {}).get(IDENTITY_ANNOTATION) == want]


JOB_ENDINGS = ("Complete", "Failed")  # the only Job conditions read (the Store keeps no other)


def job_state(job: dict[str, Any] | None) -> str | None:
    if job is None:
        return None
    conditions = {c.get("type"): c.get("status") for c in (job.get("status") or {}).get("conditions") or []}
    if conditions.get("Complete") == "True":
        return "succeeded"
    if conditions.get("Failed") == "True":
        return "failed"
    return "running"


def _condition(type_: str, ok: bool | None, reason: str, message: str) -> Condition:
    status = ConditionStatus.UNKNOWN if ok is None else (ConditionStatus.TRUE if ok else ConditionStatus.FALSE)
    return Condition(type=type_, status=status, reason=reason, message=message)


def _report(report: Report) -> Condition:
    return _condition(report.type, report.ok, report.reason, report.message)


# ModelReady's reason while the download Job's pod is in each state.
DOWNLOAD_REASONS = {"absent": "WaitingForDownload", "starting": "WaitingForDownload",
                    "unschedulable": "DownloadUnschedulable", "stuck": "DownloadCannotStart", "running": "Downloading"}


def verifying(download: Download | None) -> str | None:
    """What the downloader does while it hashes the files already on the volume, with how far it is."""
    if download is None or download.phase != "verifying":
        return None
    done = format_bytes(download.bytes_done)
    of = f" of {format_bytes(download.bytes_total)}" if download.bytes_total is not None else ""
    rate = f", {download.rate}" if download.rate else ""
    return (f"verifying the files already on the volume against the Hub's hashes: {download.percent or 0}% "
            f"({done}{of} checked{rate}); then fetching only what is missing or wrong")


def _model_ready(model: LLMModel, observed: Observed, steps: list[str], ready: int, storage: Condition,
                 fetcher: DownloadPod | None) -> Condition:
    preload = model.spec.model.preload
    if (preload and "done" in steps) or ready or observed.job == "succeeded":
        return _condition("ModelReady", True, "Present", "the weights are in place at /model-cache")
    if not preload:
        return _condition("ModelReady", True, "NotManaged",
                          "preload is false: llmpack does not download or verify the weights")
    if observed.sizing is not None:
        return _condition("ModelReady", False, observed.sizing.reason, observed.sizing.message)
    if uses_pvc(model) and storage.status != ConditionStatus.TRUE:
        pvc = f"PVC {observed.pvc['metadata']['name']}" if observed.pvc else "the PVC"
        return _condition("ModelReady", False, "WaitingForStorage",
                          f"nothing is fetched until {pvc} is bound (see StorageReady)")
    fetching = "running" in steps or (fetcher is not None and fetcher.state == "running")
    if fetching and (checking := verifying(observed.download)) is not None:
        return _condition("ModelReady", False, "Verifying", checking)
    if "running" in steps:
        return _condition("ModelReady", False, "Downloading", "the weights are being fetched")
    if fetcher is not None:
        return _condition("ModelReady", False, DOWNLOAD_REASONS[fetcher.state], fetcher.why)
    if "failed" in steps:
        return _condition("ModelReady", False, "DownloadFailed",
                          "the download failed: see `kubectl logs <pod> -c model-downloader`")
    return _condition("ModelReady", False, "Waiting", "no pod has fetched the weights yet")


@dataclass(frozen=True)
class Seen:
    """Everything the phase ladder looks at, gathered once."""

    observed: Observed
    pods: list[dict[str, Any]]  # the current weights' pods that are not being deleted
    ready: int
    desired: int
    steps: list[str]  # each pod's download/copy step: running, done, failed, waiting
    fetcher: DownloadPod | None  # the download Job's pod, while that Job runs
    storage: Condition
    model_ready: Condition


@dataclass(frozen=True)
class Rung:
    phase: Phase
    reason: str
    message: str


def spec_cannot_progress(s: Seen) -> Rung | None:
    p = s.observed.problem
    return Rung(Phase.ERROR, p.reason, p.message) if p is not None else None


def every_replica_serves(s: Seen) -> Rung | None:
    return Rung(Phase.READY, "Ready", f"{s.ready}/{s.desired} replicas ready") if s.ready >= s.desired else None


def some_replicas_serve(s: Seen) -> Rung | None:
    return Rung(Phase.DEGRADED, "Degraded", f"{s.ready}/{s.desired} replicas ready") if s.ready > 0 else None


def download_failed(s: Seen) -> Rung | None:
    return Rung(Phase.ERROR, "DownloadFailed", s.model_ready.message) if "failed" in s.steps else None


def vllm_crashed(s: Seen) -> Rung | None:
    if any(_crashed(p) for p in s.pods):
        return Rung(Phase.DEGRADED, "Crashing", "vLLM restarted and is not ready: see `kubectl logs`")
    return None


def waiting_for_size(s: Seen) -> Rung | None:
    """No PVC or download before the Hub says what the weights take (or the user gives a size)."""
    waiting = s.observed.sizing
    return Rung(Phase.PENDING, waiting.reason, waiting.message) if waiting is not None else None


def storage_not_ready(s: Seen) -> Rung | None:
    if s.storage.status != ConditionStatus.TRUE:
        return Rung(Phase.PENDING, "StorageNotReady", s.storage.message)
    return None


def download_cannot_start(s: Seen) -> Rung | None:
    """The download Job's pod cannot be placed or cannot start: nothing downloads until someone acts."""
    if s.fetcher is not None and s.fetcher.state in ("unschedulable", "stuck"):
        return Rung(Phase.PENDING, s.model_ready.reason, s.fetcher.why)
    return None


def job_downloads(s: Seen) -> Rung | None:
    if s.fetcher is not None and s.fetcher.state == "running":
        if (checking := verifying(s.observed.download)) is not None:
            return Rung(Phase.DOWNLOADING, "Verifying", f"the download Job is {checking}; no GPU is held meanwhile")
        return Rung(Phase.DOWNLOADING, "Downloading", "the download Job is fetching the weights; no GPU is held "
                    "meanwhile")
    return None


def download_starting(s: Seen) -> Rung | None:
    if s.fetcher is not None:
        return Rung(Phase.PENDING, "WaitingForDownload", s.fetcher.why)
    return None


def pod_downloads(s: Seen) -> Rung | None:
    """An init container (emptyDir, OCI): its pod holds its GPUs. After the download Job succeeded, the pod's
    own downloader only confirms the weights in well under a second: that is starting, not downloading,
    unless the download's progress says it is fetching again (the volume lost its weights)."""
    download = s.observed.download
    if (checking := verifying(download)) is not None and "running" in s.steps:
        return Rung(Phase.DOWNLOADING, "Verifying", checking)
    if download is not None and (download.percent or 0) < 100:
        return Rung(Phase.DOWNLOADING, "Downloading", "fetching the weights")
    if "running" in s.steps and s.observed.job != "succeeded":
        return Rung(Phase.DOWNLOADING, "Downloading", "fetching the weights")
    return None


def weights_load(s: Seen) -> Rung | None:
    if "done" in s.steps or ("running" in s.steps and s.observed.job == "succeeded"):
        return Rung(Phase.STARTING, "Starting", "the weights are present; vLLM is loading them")
    return None


def weights_wait_for_a_pod(s: Seen) -> Rung | None:
    """The download Job succeeded: the model is starting from then on, while its first pod is created and
    scheduled (a pod that cannot be placed is `no_node_fits`, before this)."""
    if s.observed.job == "succeeded":
        return Rung(Phase.STARTING, "Starting", "the weights are present; vLLM pods are being scheduled")
    return None


def no_node_fits(s: Seen) -> Rung | None:
    why = _unschedulable(s.pods)
    return Rung(Phase.PENDING, "Unschedulable", f"no node can run a replica: {why}") if why is not None else None


def scheduling(s: Seen) -> Rung | None:
    return Rung(Phase.PENDING, "Scheduling", "waiting for pods to be scheduled")


LADDER: tuple[Callable[[Seen], Rung | None], ...] = (
    spec_cannot_progress, every_replica_serves, some_replicas_serve, download_failed, vllm_crashed,
    waiting_for_size, storage_not_ready, download_cannot_start, job_downloads, download_starting, pod_downloads,
    weights_load, no_node_fits, weights_wait_for_a_pod, scheduling,
)


def seen(model: LLMModel, observed: Observed) -> Seen:
    pods = _current_pods(model, observed.pods)
    ready = sum(1 for p in pods if _is_ready(p))
    steps = [_init_state(p) for p in pods]
    fetcher = None
    if observed.job == "running":
        fetcher = download_pod(job_pod(observed.pods, job_name(model)), observed.job_pod_warnings)
    # The download's pod is the PVC's first consumer: a class that binds on first use waits for it.
    first_pod = fetcher.why if fetcher is not None and fetcher.state in ("unschedulable", "stuck") else None
    storage = _report(storage_report(model, observed.pvc, observed.unbound, first_pod))
    if observed.sizing is not None and observed.pvc is None:
        storage = _condition(storage.type, False, "WaitingForSize", "the PVC is created once its size is known: "
                             f"{observed.sizing.message}")
    return Seen(observed=observed, pods=pods, ready=ready, desired=model.spec.serving.replicas, steps=steps,
                fetcher=fetcher, storage=storage,
                model_ready=_model_ready(model, observed, steps, ready, storage, fetcher))


def rung(s: Seen) -> Rung:
    return next(r for check in LADDER if (r := check(s)) is not None)


def compute(model: LLMModel, observed: Observed, previous: LLMModelStatus | None) -> LLMModelStatus:
    """The status to report, before transition times are carried over (see `settle`)."""
    s = seen(model, observed)
    top = rung(s)
    if s.ready:
        available = _condition("Available", True, "Serving", f"{s.ready} of {s.desired} replicas serve")
    elif s.desired == 0:
        available = _condition("Available", False, "ScaledToZero", "serving.replicas is 0")
    else:
        available = _condition("Available", False, "NotServing", "no replica is ready yet")
    routes = observed.routes or Routes()
    return LLMModelStatus(
        phase=top.phase,
        observed_generation=model.metadata.generation,
        conditions=[_condition("Ready", top.phase == Phase.READY, top.reason, top.message), s.storage,
                    s.model_ready, available, *(_condition(r.type, r.ok, r.reason, r.message) for r in routes.reports),
                    *([_condition("Adopted", True, "KeptFromServingPack", "; ".join(observed.kept))]
                      if observed.kept else [])],
        replicas=Replicas(ready=s.ready, desired=s.desired),
        model_size=observed.model_size or (previous.model_size if previous else None),
        download=observed.download,
        resolved_revision=observed.resolved_revision or (previous.resolved_revision if previous else None),
        loading=observed.loading,
        endpoints=EndpointStatus.model_validate(dict(routes.endpoints)) if routes.endpoints else None,
        **claim_fields(observed.claim),
    )


def claim_fields(claim: Claim | None) -> dict[str, str]:
    """status.modelId and modelIdClaimedAt: an LLMModel claims one id."""
    if claim is None or len(claim.ids) != 1:
        return {}
    return {"model_id": next(iter(claim.ids)), "model_id_claimed_at": claim.claimed_at}


class _WithConditions(Protocol):
    @property
    def conditions(self) -> list[Condition]: ...
    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self: ...


S = TypeVar("S", bound=_WithConditions)


def settle(status: S, previous: S | None, now: str, generation: int | None) -> S:
    """Carry each condition's lastTransitionTime over unless its status flipped; stamp generations."""
    before = {c.type: c for c in (previous.conditions if previous else [])}
    conditions = []
    for c in status.conditions:
        old = before.get(c.type)
        since = old.last_transition_time if old is not None and old.status == c.status else now
        conditions.append(c.model_copy(update={"last_transition_time": since, "observed_generation": generation}))
    return status.model_copy(update={"conditions": conditions})


_DETAILS = ("download", "replicas")  # progress and counts


def _gist(wire: dict[str, Any]) -> dict[str, Any]:
    conditions = [{k: v for k, v in c.items() if k not in ("message", "reason")} for c in wire.get("conditions") or ()]
    return {**{k: v for k, v in wire.items() if k not in _DETAILS}, "conditions": conditions}


def only_details_differ(status: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Whether two statuses (as written) differ only in what a reader can learn a few seconds late: conditions'
    messages and reasons, download progress, replica counts. A phase, a condition's status, a generation, a
    claimed model id or an endpoint never waits."""
    return _gist(status) == _gist(previous)
