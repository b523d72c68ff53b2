"""What the Hub says a model takes, as the sizing step wrote it on the download Lease, and what follows from it:
the PVC size to ask for when none is given, whether a given size is too small, and the commit that is served.
Pure: Lease bodies in, facts out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from llmpack.api import LLMModel
from llmpack.quantity import QuantityError, format_bytes, parse_quantity
from llmpack.wellknown import PROGRESS_ANNOTATION, SIZE_ANNOTATION

# Room beyond the files: partial files of a resumed download, the completion record, the filesystem's own
# overhead. 15% is the middle of the 10-20% the Serving Pack advises; whole GiB because that is how volumes bill.
MARGIN = Fraction(115, 100)
GIB = 1 << 30


@dataclass(frozen=True)
class HubSize:
    """The sizing step's report for this model's repo and revision."""

    commit: str | None = None
    bytes: int | None = None
    error: str | None = None
    retrying: bool = False  # the Hub is out of reach and the sizing step keeps asking


def _annotation(lease: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    raw = ((lease or {}).get("metadata", {}).get("annotations") or {}).get(key)
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _for(value: dict[str, Any], model: LLMModel) -> bool:
    m = model.spec.model
    return value.get("repo") == m.name and value.get("revision") == (m.revision or "main")


def hub_size(lease: dict[str, Any] | None, model: LLMModel) -> HubSize | None:
    """The report on the Lease, when there is one for the model's current repo and revision."""
    value = _annotation(lease, SIZE_ANNOTATION)
    if value is None or not _for(value, model):
        return None
    size, commit, error = value.get("bytes"), value.get("commit"), value.get("error")
    if type(size) is int and size >= 0 and isinstance(commit, str):
        return HubSize(commit=commit, bytes=size)
    if isinstance(error, str):
        return HubSize(error=error, retrying=value.get("retrying") is True)
    return None  # a hand-edited annotation is not worth an error


def downloaded_commit(lease: dict[str, Any] | None, model: LLMModel) -> str | None:
    """The commit the last download of the model's repo and revision fetched (its progress on the Lease)."""
    value = _annotation(lease, PROGRESS_ANNOTATION)
    commit = value.get("commit") if value is not None and _for(value, model) else None
    return commit if isinstance(commit, str) else None


def pvc_size_for(size: int) -> str:
    """The PVC to ask for a model of `size` bytes: plus MARGIN, rounded up to whole GiB (at least 1Gi)."""
    return f"{max(1, -(-size * MARGIN // GIB))}Gi"


def too_small(size: int, pvc: str) -> str | None:
    """Why a PVC of `pvc` cannot hold `size` bytes of weights, with the size to set; None when it can."""
    try:
        fits = parse_quantity(pvc) >= size
    except QuantityError:
        return None
    if fits:
        return None
    return (f"the model needs {format_bytes(size)} (the Hub's figure for its files), the PVC is {pvc}: set "
            f"spec.model.storage.size to at least {pvc_size_for(size)} (the model plus 15%); nothing is downloaded "
            "until it fits")


@dataclass(frozen=True)
class HubFacts:
    """What the sizing step reported on the Lease, as the operator found it."""

    bytes: int | None = None     # what the revision's files take
    commit: str | None = None    # the commit the revision resolved to
    unreachable: bool = False    # the sizing step cannot reach the Hub, and keeps trying
    pvc_size: str | None = None  # the existing PVC's request: a size from the Hub never shrinks it
    sizes: bool = True           # False: the download began before this operator sized models (left alone)


def pvc_size(model: LLMModel, hub: HubFacts) -> str | None:
    """The size the spec gives, else the Hub's figure plus the margin (never below the PVC's own), else unknown."""
    given = model.spec.model.storage.size
    if given is not None:
        return given
    if hub.bytes is None:
        return hub.pvc_size
    wanted = pvc_size_for(hub.bytes)
    return hub.pvc_size if hub.pvc_size is not None and too_small(hub.bytes, hub.pvc_size) is None else wanted


def pinned(hub: HubFacts) -> str | None:
    """The commit the download and the replicas fetch: the one the sizing step resolved."""
    return hub.commit if hub.sizes else None


def job_revision(job: dict[str, Any] | None) -> str | None:
    """The commit an existing download Job was pinned to (its pod template cannot change, so neither can that)."""
    containers = (((job or {}).get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    args = list((containers[0].get("args") or []) if containers else [])
    revision = args[args.index("--revision") + 1] if "--revision" in args[:-1] else None
    return revision if isinstance(revision, str) and len(revision) == 40 else None


def hub_facts(model: LLMModel, report: HubSize | None, sizing_job: str | None, sizing_job_exists: bool,
              download_job: dict[str, Any] | None, pvc: dict[str, Any] | None) -> HubFacts:
    """What render needs from the sizing step and the cluster. A download Job without a sizing Job began
    before models were sized: it is left as it is. Once a download Job exists, its pinned commit is the one.
    `sizing_job`: the sizing Job's state (job_state). One that succeeded without a report (its pod never ran
    the sizing step) counts as a Hub that did not answer: a given size then goes ahead unchecked."""
    requested = (((pvc or {}).get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    pvc_size = str(requested) if requested is not None else None
    if download_job is not None and not sizing_job_exists:
        return HubFacts(pvc_size=pvc_size, sizes=False)
    commit = job_revision(download_job) if download_job is not None else (report.commit if report else None)
    silent = report is None and sizing_job == "succeeded"
    return HubFacts(bytes=report.bytes if report else None, commit=commit,
                    unreachable=(report is not None and report.retrying) or silent, pvc_size=pvc_size)
