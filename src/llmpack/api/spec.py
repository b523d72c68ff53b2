"""The desired state of an LLMModel (llm.nebari.dev/v1alpha1), field for field the LLM Serving Pack's API.

Field names and defaults are a compatibility contract: existing manifests must apply unchanged.
Additions lift limitations the seed documents (storage.accessMode, storage.retainOnDelete) or name what
the pack could only say through escape hatches (resources.gpu.product).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, WithJsonSchema, model_validator

from llmpack.api.base import ApiModel, FreeObject, Quantity, nested
from llmpack.quantity import parse_quantity


class Source(StrEnum):
    HUGGINGFACE = "huggingface"
    OCI = "oci"
    UNSET = ""  # the seed treats an empty source as Hugging Face


class StorageType(StrEnum):
    PVC = "pvc"
    EMPTY_DIR = "emptyDir"


class AccessMode(StrEnum):
    READ_WRITE_ONCE = "ReadWriteOnce"
    READ_WRITE_MANY = "ReadWriteMany"
    READ_ONLY_MANY = "ReadOnlyMany"


class UpdateStrategy(StrEnum):
    RECREATE = "Recreate"
    ROLLING_UPDATE = "RollingUpdate"


NonEmpty = Annotated[str, StringConstraints(min_length=1)]
MAX_RESOURCES = 64  # kinds of resource in requests or limits: a container asks for a handful
# A Go duration as gateways take it: 600s, 10m, 1h30m.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SecretName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
# A Kubernetes label value (what a nodeSelector can match), never empty.
LabelValue = Annotated[str, StringConstraints(min_length=1, max_length=63,
                                              pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")]


class Storage(ApiModel):
    type: StorageType = Field(StorageType.PVC, description="pvc (default): a cache that survives restarts; "
                              "emptyDir: node disk, downloaded again on every pod start.")
    size: Quantity | None = Field(None, description="PVC size; unset, the Hub's size of the files plus 15%, in "
                                  "whole Gi (required with preload false). emptyDir sizeLimit when set. A quantity "
                                  "below 8Ei, such as 30Gi.")
    storage_class_name: str | None = Field(
        None, description="Overrides the operator default (Helm defaults.storage.storageClassName).")
    access_mode: AccessMode | None = Field(
        None, description="PVC access mode; unset = operator default (ReadWriteOnce). ReadWriteMany lets "
        "replicas on different nodes share one cache.")
    retain_on_delete: bool = Field(
        False, description="Keep the PVC (the downloaded weights) when the LLMModel is deleted.")

    @model_validator(mode="after")
    def _size_is_positive(self) -> Storage:
        if self.size is not None and parse_quantity(self.size) <= 0:
            raise ValueError(f"size: {_says('size-is-positive')}")
        return self


class Model(ApiModel):
    name: NonEmpty = Field(description="Hugging Face repo id (org/name); also vLLM --served-model-name.")
    source: Source = Field(Source.HUGGINGFACE, description="huggingface (default) or oci; empty means huggingface.")
    revision: NonEmpty | None = Field(None, description="Branch, tag or commit to download.")
    auth_secret_name: SecretName | None = Field(
        None, description="Secret in the model's namespace with key HF_TOKEN, given to the downloader only.")
    image: NonEmpty | None = Field(None, description="OCI model image with weights under /models (source oci).")
    preload: bool = Field(True, description="Download (or copy) the weights before vLLM starts.")
    image_volume: bool | None = Field(
        None, description="source oci: mount the image's /models read-only at /model-cache as an image volume (no "
        "copy, no emptyDir). Unset: on when the cluster runs Kubernetes 1.35 or later; false: copy the weights "
        "into an emptyDir on every pod start, as the Serving Pack does. The nodes' runtime must support image "
        "volumes (containerd 2.1+, CRI-O 1.31+).")
    storage: Storage = nested(Storage, "Where the weights live, mounted at /model-cache.")

    @model_validator(mode="after")
    def _source_has_what_it_needs(self) -> Model:
        # Rules of the CRD's CEL (admission/table.py), here too so that `llmpack render` agrees with the cluster.
        if self.is_oci and self.image is None:
            raise ValueError(f"image: {_says('oci-needs-an-image')}")
        if not self.is_oci and self.storage.type == StorageType.PVC and self.storage.size is None and not self.preload:
            raise ValueError(f"storage.size: {_says('pvc-needs-a-size')}")
        return self

    @property
    def is_oci(self) -> bool:
        return self.source == Source.OCI


@dataclass(frozen=True)
class GpuVendor:
    """What a GPU vendor's Kubernetes stack calls things: the resource its device plugin advertises (also the
    taint key GPU pools carry, which the pods tolerate) and the node label its discovery puts the product in."""

    name: str
    resource: str
    product_label: str


# What Go's unicode.IsSpace (CEL's trim()) takes for space; Python's str.strip() also strips \x1c-\x1f.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029" \
           "\u202f\u205f\u3000"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
NVIDIA = GpuVendor("nvidia", "nvidia.com/gpu", "nvidia.com/gpu.product")  # GPU operator's feature discovery
GPU_VENDORS: dict[str, GpuVendor] = {v.name: v for v in (
    NVIDIA,
    GpuVendor("amd", "amd.com/gpu", "amd.com/gpu.product-name"),  # ROCm device plugin and node labeller
    GpuVendor("intel", "gpu.intel.com/i915", "gpu.intel.com/product"),  # Intel device plugin, NFD rules
)}


class Gpu(ApiModel):
    count: int = Field(1, ge=0, description="GPUs per replica; 0 for CPU-only.")
    # The pack's type: any string, defaulting to nvidia. We never refuse a value (manifests must apply
    # unchanged); one that is not a known vendor asks for NVIDIA GPUs and gets an admission warning.
    type: str = Field("nvidia", description="GPU vendor: nvidia (default; nvidia.com/gpu), amd (amd.com/gpu) or "
                      "intel (gpu.intel.com/i915). Any other value asks for nvidia.com/gpu.")
    product: LabelValue | None = Field(
        None, description="GPU product: pods go only to nodes whose vendor product label has this value, e.g. "
        "NVIDIA-H100-80GB-HBM3 (nvidia.com/gpu.product).")

    @property
    def known_vendor(self) -> GpuVendor | None:
        """The vendor `type` names (ignoring ASCII case and surrounding space; empty means nvidia), or None when it
        names none. Read as the admission policy's CEL reads it: trim() and lowerAscii()."""
        return GPU_VENDORS.get(self.type.strip(GO_SPACE).translate(_ASCII_LOWER) or NVIDIA.name)

    @property
    def vendor(self) -> GpuVendor:
        return self.known_vendor or NVIDIA


class Resources(ApiModel):
    gpu: Gpu = nested(Gpu, "GPUs per replica.")
    # At most MAX_RESOURCES each: the CRD's CEL bounds every quantity, and its cost estimate needs a bounded map.
    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=MAX_RESOURCES,
                                          description="Extra container requests (quantities below 8Ei).")
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=MAX_RESOURCES,
                                        description="Extra container limits (quantities below 8Ei).")


class Monitoring(ApiModel):
    enabled: bool = Field(False, description="A PodMonitor `<name>` for vLLM's /metrics (once the Prometheus "
                          "Operator's CRD is installed), and prometheus.io/scrape annotations on the pods.")


class Serving(ApiModel):
    image: NonEmpty | None = Field(None, description="vLLM image; unset = operator default.")
    command: list[str] | None = Field(None, description="Overrides the image entrypoint.")
    replicas: int = Field(1, ge=0, description="vLLM replicas.")
    tensor_parallelism: int | None = Field(None, ge=1, description="--tensor-parallel-size; unset = gpu.count.")
    data_parallelism: int = Field(1, ge=1, description="--data-parallel-size.")
    vllm_args: list[str] = Field(default_factory=list, description="Extra vLLM arguments.")
    update_strategy: UpdateStrategy = Field(UpdateStrategy.RECREATE, description="Recreate or RollingUpdate.")
    monitoring: Monitoring = nested(Monitoring, "Prometheus scraping.")


class Access(ApiModel):
    public: bool = False
    groups: list[str] = Field(default_factory=list)


class ExternalEndpoint(ApiModel):
    enabled: bool = True
    subdomain: str | None = None


class InternalEndpoint(ApiModel):
    enabled: bool = True


class Endpoints(ApiModel):
    external: ExternalEndpoint = nested(ExternalEndpoint, "The public, API-key protected route.")
    internal: InternalEndpoint = nested(InternalEndpoint, "The in-organisation, OIDC protected route.")
    request_timeout: str = Field("600s", pattern=DURATION_PATTERN,
                                 description="Gateway request timeout (a duration such as 600s or 10m).")


class Vllm(ApiModel):
    extra_args: list[str] = Field(default_factory=list)
    extra_env: list[FreeObject] = Field(default_factory=list)
    tolerations: list[FreeObject] = Field(default_factory=list)
    node_selector: dict[str, str] = Field(default_factory=dict)
    affinity: FreeObject | None = None


def _scheduler_config(value: object) -> object:
    # As the admission policy's CEL says it (admission/table.py), which cannot parse YAML: text with its kind.
    from llmpack.admission import table

    text_with_its_kind = isinstance(value, str) and len(value) <= table.SCHEDULER_TEXT_MAX and table.cel_matches(
        value, table.SCHEDULER_KIND_PATTERN)
    if value is None or isinstance(value, dict) or text_with_its_kind:
        return value
    raise ValueError(_says("scheduler-config-is-a-picker-config"))


def _says(rule: str) -> str:
    """A rule's words from the admission table, imported here, when first needed: the table reads api.names,
    and importing it while this package loads would go round in a circle."""
    from llmpack.admission.table import rule as table_rule

    return table_rule(rule).says


# The pack's schedulerConfig is schemaless: an EndpointPickerConfig object. YAML text holding one is also
# taken, as llmpack documented it first; anything else is refused with a message naming the field.
SchedulerConfig = Annotated[
    str | dict[str, Any] | None,
    BeforeValidator(_scheduler_config),
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True,
                    "description": "The endpoint picker's EndpointPickerConfig: an object, or the same as YAML "
                    "text; unset = a single max-score profile."}),
]


class InferencePool(ApiModel):
    scheduler_config: SchedulerConfig = None


class Advanced(ApiModel):
    vllm: Vllm = nested(Vllm, "Pod-level settings of the vLLM pods.")
    inference_pool: InferencePool = nested(InferencePool, "Endpoint picker settings.")


class LLMModelSpec(ApiModel):
    model: Model
    resources: Resources = nested(Resources, "Compute per replica.")
    serving: Serving = nested(Serving, "How vLLM runs.")
    access: Access | None = None
    endpoints: Endpoints = nested(Endpoints, "Routes to the model.")
    advanced: Advanced = nested(Advanced, "Escape hatches for the vLLM pods.")

    @property
    def tensor_parallel_size(self) -> int:
        return self.serving.tensor_parallelism or max(self.resources.gpu.count, 1)
