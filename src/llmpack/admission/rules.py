"""Admission rules for LLMModels: one small pure function each, returning findings that name a field.

Errors deny the request; warnings are admitted and shown by kubectl. What the CRD schema and its CEL
rules can express is also there (see api/crd.py), so a cluster without this webhook still refuses the
worst inputs; these rules add what CEL cannot say well, and every warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]  # public, not re-exported
from pydantic import ValidationError

from llmpack.api import AccessMode, LLMModel, StorageType
from llmpack.api.names import MAX_MODEL_NAME_LENGTH, NAME_PATTERN
from llmpack.api.spec import GPU_VENDORS
from llmpack.assess.sizing import too_small
from llmpack.manifests import locate
from llmpack.quantity import QuantityError, parse_quantity

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    level: Level
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def error(field: str, message: str) -> Finding:
    return Finding("error", field, message)


def warning(field: str, message: str) -> Finding:
    return Finding("warning", field, message)


Rule = Callable[[LLMModel, LLMModel | None], Finding | None]


# -- errors ------------------------------------------------------------------------------------------------

def name_fits_derived_names(new: LLMModel, old: LLMModel | None) -> Finding | None:
    if len(new.name) > MAX_MODEL_NAME_LENGTH:
        return error("metadata.name", f"must be at most {MAX_MODEL_NAME_LENGTH} characters (it is {len(new.name)}): "
                     "it names the model's Service and label values")
    if not re.match(NAME_PATTERN, new.name):
        return error("metadata.name", "must start with a letter and hold only lowercase letters, digits and '-': "
                     "it names the model's Service")
    return None


def repo_id_is_valid(new: LLMModel, old: LLMModel | None) -> Finding | None:
    if new.spec.model.is_oci:
        return None
    try:
        validate_repo_id(new.spec.model.name)
    except HFValidationError as exc:
        return error("spec.model.name", f"{new.spec.model.name!r} is not a Hugging Face repo id (org/name): {exc}")
    return None


def parallelism_fits_gpus(new: LLMModel, old: LLMModel | None) -> Finding | None:
    spec = new.spec
    gpus = spec.resources.gpu.count
    needed = spec.tensor_parallel_size * spec.serving.data_parallelism
    if gpus > 0 and needed > gpus:
        return error("spec.serving.tensorParallelism", f"tensorParallelism {spec.tensor_parallel_size} x "
                     f"dataParallelism {spec.serving.data_parallelism} needs {needed} GPUs per replica, but "
                     f"resources.gpu.count is {gpus}: raise gpu.count or lower the parallelism")
    return None


def pvc_does_not_shrink(new: LLMModel, old: LLMModel | None) -> Finding | None:
    if old is None or new.spec.model.is_oci or new.spec.model.storage.type != StorageType.PVC:
        return None
    before, after = old.spec.model.storage.size, new.spec.model.storage.size
    if before and after and parse_quantity(after) < parse_quantity(before):
        return error("spec.model.storage.size", f"cannot shrink from {before} to {after}: a PVC can only grow. "
                     "Keep the old size, or delete and re-create the model to start with a smaller cache")
    return None


def storage_type_is_fixed(new: LLMModel, old: LLMModel | None) -> Finding | None:
    if old is not None and old.spec.model.storage.type != new.spec.model.storage.type:
        return error("spec.model.storage.type", f"cannot change from {old.spec.model.storage.type.value} to "
                     f"{new.spec.model.storage.type.value} on an existing model: create a new LLMModel (or delete "
                     "and re-create this one) to move the weights")
    return None


def storage_class_is_fixed(new: LLMModel, old: LLMModel | None) -> Finding | None:
    if old is not None and old.spec.model.storage.storage_class_name != new.spec.model.storage.storage_class_name:
        return error("spec.model.storage.storageClassName", "cannot change on an existing model: a PVC's class is "
                     "fixed. Create a new LLMModel (or delete and re-create this one) to use another class")
    return None


# -- warnings ----------------------------------------------------------------------------------------------

def emptydir_preload_downloads_on_every_start(new: LLMModel, old: LLMModel | None) -> Finding | None:
    m = new.spec.model
    if not m.is_oci and m.storage.type == StorageType.EMPTY_DIR and m.preload:
        return warning("spec.model.storage.type", "emptyDir with preload: every pod restart downloads the model "
                       "again; use storage.type pvc for anything but small models")
    return None


def emptydir_without_size_limit(new: LLMModel, old: LLMModel | None) -> Finding | None:
    m = new.spec.model
    copies = m.is_oci and m.image_volume is False  # an image volume, on by default, needs no emptyDir
    if (copies or m.storage.type == StorageType.EMPTY_DIR) and not (
            m.storage.type == StorageType.EMPTY_DIR and m.storage.size):
        return warning("spec.model.storage.size", "the emptyDir holding the weights has no size limit: it can fill "
                       "the node's disk; set storage.type emptyDir with a size")
    return None


def oci_image_by_tag(new: LLMModel, old: LLMModel | None) -> Finding | None:
    image = new.spec.model.image
    if new.spec.model.is_oci and image and "@sha256:" not in image:
        return warning("spec.model.image", f"{image} is referenced by tag, and tags are mutable: pin it by "
                       "digest (image@sha256:...) so every replica serves the same weights")
    return None


def replicas_share_one_node(new: LLMModel, old: LLMModel | None) -> Finding | None:
    m = new.spec.model
    mode = m.storage.access_mode or AccessMode.READ_WRITE_ONCE
    if not m.is_oci and m.storage.type == StorageType.PVC and mode == AccessMode.READ_WRITE_ONCE \
            and new.spec.serving.replicas > 1:
        return warning("spec.serving.replicas", f"{new.spec.serving.replicas} replicas share a ReadWriteOnce PVC, "
                       "so all of them must run on one node; use storage.accessMode ReadWriteMany with a "
                       "network filesystem class to spread them")
    return None


def model_larger_than_pvc(new: LLMModel, old: LLMModel | None) -> Finding | None:
    known = (old.status.model_size if old is not None and old.status else None)
    size = new.spec.model.storage.size
    if not known or not size or new.spec.model.storage.type != StorageType.PVC:
        return None
    try:
        message = too_small(int(parse_quantity(known)), size)  # the operator's own figure and advice
    except QuantityError:
        return None
    return warning("spec.model.storage.size", message) if message else None


def gpu_type_names_no_vendor(new: LLMModel, old: LLMModel | None) -> Finding | None:
    gpu = new.spec.resources.gpu
    if gpu.count == 0 or gpu.known_vendor is not None:
        return None
    vendors = ", ".join(GPU_VENDORS)
    return warning("spec.resources.gpu.type", f"{gpu.type!r} is not a GPU vendor ({vendors}), so the pods ask for "
                   f"{gpu.vendor.resource} on any GPU node. type names the vendor only: to pick a GPU product, set "
                   f"resources.gpu.product (the node's {gpu.vendor.product_label} label, e.g. NVIDIA-H100-80GB-HBM3) "
                   "or advanced.vllm.nodeSelector")


RULES: tuple[Rule, ...] = (
    name_fits_derived_names, repo_id_is_valid, parallelism_fits_gpus, pvc_does_not_shrink, storage_type_is_fixed,
    storage_class_is_fixed, emptydir_preload_downloads_on_every_start, emptydir_without_size_limit,
    oci_image_by_tag, replicas_share_one_node, model_larger_than_pvc, gpu_type_names_no_vendor,
)


def _kind_of(value: object) -> str:
    """A JSON value's kind, as a reader of the manifest knows it."""
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _parse(body: object) -> LLMModel | Finding:
    if not isinstance(body, dict):
        return error("object", f"must be an LLMModel (a mapping), not {_kind_of(body)}")
    try:
        return LLMModel.from_body(body)
    except ValidationError as exc:
        field, message = locate(exc.errors()[0])
        return error(field or "object", message)


def review(new: object, old: object = None) -> list[Finding]:
    """Every finding for a create (old None) or an update; errors first. Any JSON value is taken: what is
    not an LLMModel is refused naming its field, or `object` when it is the whole object."""
    parsed = _parse(new)
    if isinstance(parsed, Finding):
        return [parsed]
    previous = _parse(old) if old is not None else None
    before = previous if isinstance(previous, LLMModel) else None
    findings = [f for rule in RULES if (f := rule(parsed, before)) is not None]
    return sorted(findings, key=lambda f: f.level != "error")
