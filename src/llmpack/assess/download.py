"""Is the download Job's pod fetching the weights, and when it is not, why. Pure.

A Job that runs is not a download that runs: its pod may wait for a node (the scheduler says why in the
pod's PodScheduled condition, the words of its FailedScheduling Event), for an image, or for its volume
(kubelet's Warning Events, FailedMount and the like, which the operator reads only while that pod waits).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from llmpack.assess.storage import newest, reporter

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# Waiting reasons that do not pass by themselves: the pod cannot start until someone acts.
STUCK = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                   "CreateContainerError", "RunContainerError"})

State = Literal["absent", "unschedulable", "stuck", "starting", "running"]


@dataclass(frozen=True)
class DownloadPod:
    state: State
    why: str  # for people: what it does or waits for


def job_pod(pods: Iterable[dict[str, Any]], job: str) -> dict[str, Any] | None:
    """The Job's newest pod that is not being deleted and has not failed (a failed one is replaced)."""
    mine = [p for p in pods if (p["metadata"].get("labels") or {}).get(JOB_NAME_LABEL) == job
            and not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("phase") != "Failed"]
    return max(mine, key=lambda p: str(p["metadata"].get("creationTimestamp") or ""), default=None)


def unschedulable(pod: dict[str, Any]) -> str | None:
    """The scheduler's own words when it cannot place the pod (e.g. "Insufficient nvidia.com/gpu")."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable":
            return str(c.get("message") or "no node fits the pod")
    return None


def _waiting(pod: dict[str, Any]) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if (waiting := (status.get("state") or {}).get("waiting")) is not None:
            return dict(waiting)
    return None


def waits_on_node(pod: dict[str, Any]) -> bool:
    """Placed on a node and still Pending, with nothing in its status that says why: only its Events can."""
    if (pod.get("status") or {}).get("phase") != "Pending":
        return False
    if not (pod.get("spec") or {}).get("nodeName"):
        return False  # not placed: the scheduler's condition says why
    return (_waiting(pod) or {}).get("reason") not in STUCK


def download_pod(pod: dict[str, Any] | None, warnings: Iterable[dict[str, Any]] = ()) -> DownloadPod:
    """`warnings`: the pod's Warning Events, read while it waits on its node."""
    if pod is None:
        return DownloadPod("absent", "the download Job has not created its pod yet")
    if (pod.get("status") or {}).get("phase") in ("Running", "Succeeded"):
        return DownloadPod("running", "the download Job's pod is fetching the weights")
    if (why := unschedulable(pod)) is not None:
        return DownloadPod("unschedulable", f"the download Job's pod cannot be scheduled: {why}")
    waiting = _waiting(pod) or {}
    if waiting.get("reason") in STUCK:
        return DownloadPod("stuck", f"the download Job's pod cannot start: {waiting['reason']}: "
                                    f"{waiting.get('message') or 'see `kubectl describe pod`'}")
    if (warning := newest(warnings)) is not None:
        return DownloadPod("stuck", f"the download Job's pod cannot start: {warning.get('reason')}: "
                                    f"{warning.get('message') or ''} (reported by {reporter(warning)})")
    node = (pod.get("spec") or {}).get("nodeName")
    where = f" on node {node}" if node else ""
    return DownloadPod("starting", f"the download Job's pod is starting{where}"
                                   + (f" ({waiting['reason']})" if waiting.get("reason") else ""))
