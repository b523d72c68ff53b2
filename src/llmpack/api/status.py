"""What the operator reports about an LLMModel. Every field is written by the operator only."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from llmpack.api.base import ApiModel


class Phase(StrEnum):
    PENDING = "Pending"          # nothing scheduled yet, or storage not bound
    DOWNLOADING = "Downloading"  # weights are being downloaded or copied
    STARTING = "Starting"        # weights present, vLLM not ready yet
    READY = "Ready"              # every desired replica serves
    DEGRADED = "Degraded"        # some replicas serve, or a child failed after being Ready
    ERROR = "Error"              # the spec cannot be applied; the Ready condition says why


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """metav1.Condition."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class Replicas(ApiModel):
    ready: int = 0
    desired: int = 0


class EndpointStatus(ApiModel):
    external: str | None = None
    internal: str | None = None


class Download(ApiModel):
    """Progress of the shared download, mirrored from the download Lease."""

    phase: Literal["verifying", "downloading"] | None = Field(
        None, description="verifying: the files already on the volume (another tool's download, an older "
        "revision) are hashed against the Hub's hashes, and the bytes are those checked; downloading: what is "
        "missing or wrong is fetched.")
    bytes_done: int = 0
    bytes_total: int | None = None
    percent: int | None = Field(None, ge=0, le=100)
    rate: str | None = Field(None, description="Bytes per second, human readable (12.3Mi/s).")
    eta: str | None = Field(None, description="Time left, such as 4m10s.")
    holder: str | None = Field(None, description="The pod doing the download.")


class LLMModelStatus(ApiModel):
    phase: Phase | None = None
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    model_size: str | None = Field(None, description="Size of the weights on disk, when known: from the Hub "
                                   "before the download starts.")
    loading: str | None = Field(
        None, description="How the weights reach /model-cache: DownloadJob (a Job onto the PVC), PodDownload (each "
        "pod downloads into its emptyDir), ImageVolume (the OCI image's /models mounted read-only), Copy (copied "
        "from the OCI image into an emptyDir on every pod start) or Manual (preload false).")
    resolved_revision: str | None = Field(
        None, description="The commit spec.model.revision (a branch, tag or the default) resolved to when the "
        "weights were sized: the download and every replica fetch exactly this commit until the revision changes.")
    replicas: Replicas | None = None
    endpoints: EndpointStatus | None = None
    download: Download | None = None
    model_id: str | None = Field(None, description="The model id this object claims on the shared hostnames "
                                 "(spec.model.name), owned or not: the endpoint conditions say which.")
    model_id_claimed_at: str | None = Field(None, description="Since when it claims modelId: the oldest claim "
                                            "of an id owns it (docs/routing.md).", json_schema_extra={
                                                "format": "date-time"})
