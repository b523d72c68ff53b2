"""The admission table's rules in Python: one small pure function per rule of admission/table.py whose Python side
is not a validator of the API models, each giving the table's verdict in the table's words.

The API server answers these rules in the cluster (the CRD's CEL and the ValidatingAdmissionPolicies); this
side is for what runs without one: `llmpack render`, tests, and the webhook's cross-object rules that share
Finding. review() gives every finding for a create or an update, as the API server would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from llmpack.admission import table
from llmpack.admission.table import Settings, cel_matches
from llmpack.api import AccessMode, LLMModel, StorageType
from llmpack.api.names import MAX_MODEL_NAME_LENGTH, NAME_PATTERN
from llmpack.manifests import locate
from llmpack.quantity import is_quantity, parse_quantity

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


def finding(rule_name: str, **values: object) -> Finding:
    """The finding of a table rule, in its words, with its slots filled from `values`."""
    rule = table.rule(rule_name)
    return Finding("error" if rule.level == "error" else "warning", rule.field,
                   rule.text(**values).removeprefix(f"{rule.field}: "))


Check = Callable[[LLMModel, LLMModel | None, Settings], Finding | None]


# -- denials (in the cluster: the CRD) ---------------------------------------------------------------------

def name_fits_derived_names(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    return finding("name-fits-derived-names") if len(new.name) > MAX_MODEL_NAME_LENGTH else None


def name_is_a_service_name(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    return None if cel_matches(new.name, NAME_PATTERN) else finding("name-is-a-service-name")


def is_repo_id(name: str) -> bool:
    return (cel_matches(name, table.REPO_ID_PATTERN) and not any(s in name for s in table.REPO_ID_FORBIDDEN)
            and not name.endswith(table.REPO_ID_FORBIDDEN_END))


def repo_id_is_valid(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    name = new.spec.model.name
    return None if new.spec.model.is_oci or is_repo_id(name) else finding("repo-id-is-valid", name=name)


def parallelism_fits_gpus(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    gpus, serving = new.spec.resources.gpu.count, new.spec.serving
    if gpus > 0 and new.spec.tensor_parallel_size * serving.data_parallelism > gpus:
        return finding("parallelism-fits-gpus")
    return None


def pvc_does_not_shrink(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    if old is None or new.spec.model.is_oci or new.spec.model.storage.type != StorageType.PVC:
        return None
    before, after = old.spec.model.storage.size, new.spec.model.storage.size
    if before and after and parse_quantity(after) < parse_quantity(before):
        return finding("pvc-does-not-shrink", before=before, after=after)
    return None


def storage_type_is_fixed(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    if old is not None and old.spec.model.storage.type != new.spec.model.storage.type:
        return finding("storage-type-is-fixed")
    return None


def storage_class_is_fixed(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    if old is not None and old.spec.model.storage.storage_class_name != new.spec.model.storage.storage_class_name:
        return finding("storage-class-is-fixed")
    return None


# -- warnings (in the cluster: a ValidatingAdmissionPolicy) -------------------------------------------------

def emptydir_preload_downloads_on_every_start(new: LLMModel, old: LLMModel | None,
                                              settings: Settings) -> Finding | None:
    m = new.spec.model
    if not m.is_oci and m.storage.type == StorageType.EMPTY_DIR and m.preload:
        return finding("emptydir-preload-downloads-on-every-start")
    return None


def emptydir_without_size_limit(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    m = new.spec.model
    copies = m.is_oci and m.image_volume is False  # an image volume, on by default, needs no emptyDir
    if (copies or m.storage.type == StorageType.EMPTY_DIR) and not (
            m.storage.type == StorageType.EMPTY_DIR and m.storage.size):
        return finding("emptydir-without-size-limit")
    return None


def oci_image_by_tag(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    image = new.spec.model.image
    if new.spec.model.is_oci and image and "@sha256:" not in image:
        return finding("oci-image-by-tag", image=image)
    return None


def replicas_share_one_node(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    m = new.spec.model
    mode = m.storage.access_mode or settings.default_access_mode
    if not m.is_oci and m.storage.type == StorageType.PVC and mode == AccessMode.READ_WRITE_ONCE \
            and new.spec.serving.replicas > 1:
        return finding("replicas-share-one-node", replicas=new.spec.serving.replicas)
    return None


def model_larger_than_pvc(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    known = old.status.model_size if old is not None and old.status else None
    size = new.spec.model.storage.size
    if not known or not size or new.spec.model.storage.type != StorageType.PVC or not is_quantity(known):
        return None
    if parse_quantity(known) > parse_quantity(size):
        return finding("model-larger-than-pvc", known=known, size=size)
    return None


def gpu_type_names_no_vendor(new: LLMModel, old: LLMModel | None, settings: Settings) -> Finding | None:
    gpu = new.spec.resources.gpu
    if gpu.count == 0 or gpu.known_vendor is not None:
        return None
    return finding("gpu-type-names-no-vendor", type=gpu.type)


CHECKS: dict[str, Check] = {
    "name-fits-derived-names": name_fits_derived_names,
    "name-is-a-service-name": name_is_a_service_name,
    "repo-id-is-valid": repo_id_is_valid,
    "parallelism-fits-gpus": parallelism_fits_gpus,
    "pvc-does-not-shrink": pvc_does_not_shrink,
    "storage-type-is-fixed": storage_type_is_fixed,
    "storage-class-is-fixed": storage_class_is_fixed,
    "emptydir-preload-downloads-on-every-start": emptydir_preload_downloads_on_every_start,
    "emptydir-without-size-limit": emptydir_without_size_limit,
    "oci-image-by-tag": oci_image_by_tag,
    "replicas-share-one-node": replicas_share_one_node,
    "model-larger-than-pvc": model_larger_than_pvc,
    "gpu-type-names-no-vendor": gpu_type_names_no_vendor,
}


def _kind_of(value: object) -> str:
    """A JSON value's kind, as a reader of the manifest knows it."""
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def parse(body: object) -> LLMModel | Finding:
    """The object as an LLMModel, or the finding that says why it is none: the API models' own validation,
    which holds the table's rules marked `in_models`, naming the field."""
    if not isinstance(body, dict):
        return error("object", f"must be an LLMModel (a mapping), not {_kind_of(body)}")
    try:
        return LLMModel.from_body(body)
    except ValidationError as exc:
        field, message = locate(exc.errors()[0])
        return error(field or "object", message)


def review(new: object, old: object = None, settings: Settings | None = None) -> list[Finding]:
    """Every finding for a create (old None) or an update; errors first. Any JSON value is taken: what is
    not an LLMModel is refused naming its field, or `object` when it is the whole object."""
    parsed = parse(new)
    if isinstance(parsed, Finding):
        return [parsed]
    previous = parse(old) if old is not None else None
    before = previous if isinstance(previous, LLMModel) else None
    settings = settings or Settings()
    findings = [f for check in CHECKS.values() if (f := check(parsed, before, settings)) is not None]
    return sorted(findings, key=lambda f: f.level != "error")
