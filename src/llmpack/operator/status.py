"""The truth about an LLMModel, computed from what the cluster holds. Pure: no I/O, time passed in.

phase: Pending (storage not bound, nothing scheduled) -> Downloading (a downloader/loader init container
runs) -> Starting (weights present, vLLM not ready) -> Ready (ready >= desired); Degraded when some but
not all replicas serve or vLLM crashed after starting; Error when the spec cannot be applied or
cannot make progress, e.g. a missing Secret or a failed download (the Ready condition says why and what
to do). A rollout to new weights is not a failure: it shows Downloading/Starting again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmpack.api import Condition, ConditionStatus, LLMModel, LLMModelStatus, Phase, Replicas
from llmpack.api.status import Download, EndpointStatus
from llmpack.quantity import format_bytes
from llmpack.render.meta import IDENTITY_ANNOTATION, identity
from llmpack.render.storage import DOWNLOADER, LOADER

LOADERS = (DOWNLOADER, LOADER)


Report = tuple[bool, str, str]  # a condition: (ok, reason, message)


@dataclass(frozen=True)
class Routes:
    pool: Report
    external: Report
    internal: Report
    endpoints: dict[str, str]  # side -> URL, for the sides whose route is in place


@dataclass(frozen=True)
class Observed:
    """What the operator saw of one model's children in this reconcile."""

    pvc: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    problem: tuple[str, str] | None = None  # (reason, message): the spec cannot be applied or cannot progress
    download: Download | None = None
    model_size: str | None = None
    job: str | None = None  # the download Job for the current weights: "running", "succeeded" or "failed"
    routes: Routes | None = None  # InferencePoolReady, ExternalEndpointReady, InternalEndpointReady


PROGRESS_ANNOTATION = "llm.nebari.dev/download-progress"  # written by the downloader holding the Lease


def download_progress(lease: dict[str, Any] | None) -> tuple[Download | None, str | None]:
    """(progress while a download runs, the model's size once known) from the download Lease."""
    raw = ((lease or {}).get("metadata", {}).get("annotations") or {}).get(PROGRESS_ANNOTATION)
    try:
        progress = json.loads(raw) if raw else None
        if not isinstance(progress, dict):
            return None, None
        total = int(progress["bytes_total"]) if progress.get("bytes_total") is not None else None
        size = format_bytes(total) if total else None
        if progress.get("phase") != "downloading":
            return None, size
        return Download(bytes_done=int(progress.get("bytes_done", 0)), bytes_total=total,
                        percent=max(0, min(100, int(progress.get("percent", 0)))), rate=progress.get("rate"),
                        eta=progress.get("eta"), holder=progress.get("holder")), size
    except (ValueError, TypeError, KeyError, OverflowError):  # OverflowError: int() of an Infinity
        return None, None  # a hand-edited annotation is not worth an error


def refusal(obj: dict[str, Any] | None) -> str | None:
    """The gateway's own words when it did not accept a route or policy; None when it did or has not judged.

    Envoy Gateway reports per ancestor (status.ancestors[].conditions, Accepted=False); Envoy AI Gateway
    on the object (status.conditions: Accepted=False or NotAccepted=True).
    """
    status = (obj or {}).get("status") or {}
    conditions = list(status.get("conditions") or [])
    for ancestor in status.get("ancestors") or []:
        conditions += ancestor.get("conditions") or []
    for c in conditions:
        if (c.get("type"), c.get("status")) in (("Accepted", "False"), ("NotAccepted", "True")):
            return f"{c.get('reason') or 'NotAccepted'}: {c.get('message') or 'no message'}"
    return None


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
    """The scheduler's own words when a pod cannot be placed (e.g. "Insufficient nvidia.com/gpu")."""
    for pod in pods:
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable":
                return str(c.get("message") or "no node fits the pod")
    return None


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


def _storage_condition(model: LLMModel, pvc: dict[str, Any] | None) -> Condition:
    m = model.spec.model
    if m.is_oci or m.storage.type.value == "emptyDir":
        return _condition("StorageReady", True, "EmptyDir", "an emptyDir volume is created with each pod")
    if pvc is None:
        return _condition("StorageReady", False, "Creating", "the PVC is being created")
    phase = (pvc.get("status") or {}).get("phase")
    name = pvc["metadata"]["name"]
    if phase == "Bound":
        return _condition("StorageReady", True, "Bound", f"PVC {name} is bound")
    if phase == "Lost":
        return _condition("StorageReady", False, "Lost", f"PVC {name} lost its volume: the cache must be rebuilt")
    return _condition("StorageReady", False, "Pending", f"PVC {name} waits for a volume (check its StorageClass "
                      f"and `kubectl describe pvc {name}`)")


def compute(model: LLMModel, observed: Observed, previous: LLMModelStatus | None) -> LLMModelStatus:
    """The status to report, before transition times are carried over (see `settle`)."""
    desired = model.spec.serving.replicas
    pods = _current_pods(model, observed.pods)
    ready = sum(1 for p in pods if _is_ready(p))
    steps = [_init_state(p) for p in pods]
    storage = _storage_condition(model, observed.pvc)
    preload = model.spec.model.preload

    if (preload and "done" in steps) or ready or observed.job == "succeeded":
        model_ready = _condition("ModelReady", True, "Present", "the weights are in place at /model-cache")
    elif not preload:
        model_ready = _condition("ModelReady", True, "NotManaged",
                                 "preload is false: llmpack does not download or verify the weights")
    elif "running" in steps or observed.job == "running":
        model_ready = _condition("ModelReady", False, "Downloading", "the weights are being fetched")
    elif "failed" in steps:
        model_ready = _condition("ModelReady", False, "DownloadFailed",
                                 "the download failed: see `kubectl logs <pod> -c model-downloader`")
    else:
        model_ready = _condition("ModelReady", False, "Waiting", "no pod has fetched the weights yet")

    if ready:
        available = _condition("Available", True, "Serving", f"{ready} of {desired} replicas serve")
    elif desired == 0:
        available = _condition("Available", False, "ScaledToZero", "serving.replicas is 0")
    else:
        available = _condition("Available", False, "NotServing", "no replica is ready yet")

    if observed.problem is not None:
        phase, (reason, message) = Phase.ERROR, observed.problem
    elif ready >= desired:
        phase, reason, message = Phase.READY, "Ready", f"{ready}/{desired} replicas ready"
    elif ready > 0:
        phase, reason, message = Phase.DEGRADED, "Degraded", f"{ready}/{desired} replicas ready"
    elif "failed" in steps:
        phase, reason, message = Phase.ERROR, "DownloadFailed", model_ready.message
    elif any(_crashed(p) for p in pods):
        phase, reason, message = Phase.DEGRADED, "Crashing", "vLLM restarted and is not ready: see `kubectl logs`"
    elif storage.status != ConditionStatus.TRUE:
        phase, reason, message = Phase.PENDING, "StorageNotReady", storage.message
    elif observed.job == "running":
        phase, reason, message = Phase.DOWNLOADING, "Downloading", "the download Job is fetching the weights; no GPU " \
            "is held meanwhile"
    elif "running" in steps or (observed.download is not None and (observed.download.percent or 0) < 100):
        # An init container (emptyDir, OCI, or the safety net after the Job): its pod holds its GPUs.
        phase, reason, message = Phase.DOWNLOADING, "Downloading", "fetching the weights"
    elif "done" in steps:
        phase, reason, message = Phase.STARTING, "Starting", "the weights are present; vLLM is loading them"
    elif (why := _unschedulable(pods)) is not None:
        phase, reason, message = Phase.PENDING, "Unschedulable", f"no node can run a replica: {why}"
    else:
        phase, reason, message = Phase.PENDING, "Scheduling", "waiting for pods to be scheduled"
    ready_condition = _condition("Ready", phase == Phase.READY, reason, message)

    return LLMModelStatus(
        phase=phase,
        observed_generation=model.metadata.generation,
        conditions=[ready_condition, storage, model_ready, available, *_route_conditions(observed.routes)],
        replicas=Replicas(ready=ready, desired=desired),
        model_size=observed.model_size or (previous.model_size if previous else None),
        download=observed.download,
        endpoints=EndpointStatus.model_validate(routes.endpoints) if (routes := observed.routes) and routes.endpoints
        else None,
    )


def _route_conditions(routes: Routes | None) -> list[Condition]:
    if routes is None:
        return []
    return [_condition("InferencePoolReady", *routes.pool), _condition("ExternalEndpointReady", *routes.external),
            _condition("InternalEndpointReady", *routes.internal)]


def settle(status: LLMModelStatus, previous: LLMModelStatus | None, now: str, generation: int | None) -> LLMModelStatus:
    """Carry each condition's lastTransitionTime over unless its status flipped; stamp generations."""
    before = {c.type: c for c in (previous.conditions if previous else [])}
    conditions = []
    for c in status.conditions:
        old = before.get(c.type)
        since = old.last_transition_time if old is not None and old.status == c.status else now
        conditions.append(c.model_copy(update={"last_transition_time": since, "observed_generation": generation}))
    return status.model_copy(update={"conditions": conditions})
