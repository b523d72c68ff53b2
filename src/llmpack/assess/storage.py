"""StorageReady: is the model's PVC bound, and when it is not, why. Pure.

While a PVC is not bound the operator gathers what the API server knows about it (`Unbound`: its
StorageClass, the Warning Events about it); the condition names the first cause found, in the order a
person would look: a StorageClass that does not exist, a class that binds only once a first pod is
scheduled (and why that pod is not), what the provisioner or the volume controller reported, and else
which provisioner it waits for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from llmpack.api import LLMModel
from llmpack.assess.report import Report

STORAGE_READY = "StorageReady"
SELECTED_NODE = "volume.kubernetes.io/selected-node"  # set by the scheduler on a WaitForFirstConsumer PVC
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"  # set by the volume controller
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


@dataclass(frozen=True)
class Unbound:
    """What the API server says about a PVC that is not bound, gathered only while it is not."""

    storage_class: dict[str, Any] | None = None  # the PVC's StorageClass, when it exists
    class_missing: bool = False  # the PVC names a StorageClass that does not exist
    warnings: tuple[dict[str, Any], ...] = ()  # Warning Events about the PVC


def uses_pvc(model: LLMModel) -> bool:
    m = model.spec.model
    return not m.is_oci and m.storage.type.value != "emptyDir"


def pending(pvc: dict[str, Any] | None) -> bool:
    """The PVC exists and is not bound yet (Lost is another story: its volume is gone)."""
    return pvc is not None and (pvc.get("status") or {}).get("phase") not in ("Bound", "Lost")


def _when(event: dict[str, Any]) -> str:
    # Events written through events.k8s.io carry eventTime; core ones lastTimestamp. ISO-8601 UTC compares as text.
    return str(event.get("lastTimestamp") or event.get("eventTime") or
               (event.get("metadata") or {}).get("creationTimestamp") or "")


def newest(events: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    return max(events, key=_when, default=None)


def reporter(event: dict[str, Any]) -> str:
    """Who wrote an Event, as `kubectl describe` shows it ("From")."""
    return str(event.get("reportingComponent") or (event.get("source") or {}).get("component") or "the cluster")


def storage_report(model: LLMModel, pvc: dict[str, Any] | None, unbound: Unbound | None = None,
                   first_pod: str | None = None) -> Report:
    """`first_pod`: why the PVC's first pod (the download Job's) cannot run, when it cannot."""
    if not uses_pvc(model):
        return Report(STORAGE_READY, True, "EmptyDir", "an emptyDir volume is created with each pod")
    if pvc is None:
        return Report(STORAGE_READY, False, "Creating", "the PVC is being created")
    name = pvc["metadata"]["name"]
    phase = (pvc.get("status") or {}).get("phase")
    if phase == "Bound":
        return Report(STORAGE_READY, True, "Bound", f"PVC {name} is bound")
    if phase == "Lost":
        return Report(STORAGE_READY, False, "Lost", f"PVC {name} lost its volume: the cache must be rebuilt")
    return _unbound_report(pvc, unbound or Unbound(), first_pod)


def _unbound_report(pvc: dict[str, Any], unbound: Unbound, first_pod: str | None) -> Report:
    name = pvc["metadata"]["name"]
    annotations = pvc["metadata"].get("annotations") or {}
    class_name = (pvc.get("spec") or {}).get("storageClassName")
    if unbound.class_missing:
        return Report(STORAGE_READY, False, "StorageClassNotFound",
                      f"StorageClass {class_name} does not exist, so PVC {name} cannot bind: create that "
                      f"StorageClass (`kubectl get storageclass` lists those there are), or delete this LLMModel "
                      "and apply it again with spec.model.storage.storageClassName naming one that exists (a "
                      "PVC's class cannot change)")
    storage_class = unbound.storage_class or {}
    if storage_class.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER and SELECTED_NODE not in annotations:
        message = (f"PVC {name} binds once its first pod is scheduled (StorageClass {class_name} has "
                   f"volumeBindingMode {WAIT_FOR_FIRST_CONSUMER})")
        return Report(STORAGE_READY, False, "WaitingForFirstConsumer",
                      f"{message}; {first_pod}" if first_pod else message)
    if (warning := newest(unbound.warnings)) is not None:
        return Report(STORAGE_READY, False, str(warning.get("reason") or "Pending"),
                      f"PVC {name} is not bound; {reporter(warning)} reports: {warning.get('message') or ''}".strip())
    provisioner = annotations.get(STORAGE_PROVISIONER) or storage_class.get("provisioner")
    if provisioner:
        return Report(STORAGE_READY, False, "Pending",
                      f"PVC {name} waits for a volume from {provisioner} (StorageClass {class_name}); "
                      f"`kubectl describe pvc {name}` shows its events")
    return Report(STORAGE_READY, False, "Pending", f"PVC {name} waits for a volume (check its StorageClass and "
                  f"`kubectl describe pvc {name}`)")
