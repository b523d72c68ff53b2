"""Changes the operator refuses to make behind the user's back. Pure: desired and observed objects in,
a Problem out, or None when applying is safe."""

from __future__ import annotations

from typing import Any

from llmpack.assess.report import Problem
from llmpack.quantity import QuantityError, parse_quantity


def pvc_problem(desired: dict[str, Any], observed: dict[str, Any] | None) -> Problem | None:
    """A PVC is never shrunk, re-classed or recreated: the weights on it took an hour to fetch."""
    if observed is None:
        return None
    name = desired["metadata"]["name"]
    want, have = desired["spec"], observed.get("spec") or {}
    want_size = want["resources"]["requests"]["storage"]
    have_size = ((have.get("resources") or {}).get("requests") or {}).get("storage")
    try:
        shrinks = have_size is not None and parse_quantity(want_size) < parse_quantity(have_size)
    except QuantityError:  # a size outside our grammar (a PVC edited by hand): the API server refuses a shrink
        shrinks = False
    if shrinks:
        return Problem("StorageShrinkRefused",
                       f"PVC {name} holds {have_size} and PVCs cannot shrink: set spec.model.storage.size back to at "
                       f"least {have_size}, or delete the PVC to start over (the weights are downloaded again)")
    if "storageClassName" in want and have.get("storageClassName") not in (None, want["storageClassName"]):
        return Problem("StorageClassChangeRefused",
                       f"PVC {name} uses storage class {have.get('storageClassName')}, the spec asks for "
                       f"{want['storageClassName']}: a PVC's class cannot change. Revert storageClassName, or delete "
                       f"the PVC to recreate it (the weights are downloaded again)")
    if have.get("accessModes") and have["accessModes"] != want["accessModes"]:
        return Problem("AccessModeChangeRefused",
                       f"PVC {name} has access mode {have['accessModes'][0]}, the spec asks for "
                       f"{want['accessModes'][0]}: a PVC's access mode cannot change. Revert accessMode, or delete "
                       f"the PVC to recreate it")
    return None
