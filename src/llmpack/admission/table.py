"""Every admission rule of an LLMModel, in one table: the layer that answers it, the field it names, its words
and its CEL.

Each rule lives in exactly one layer:
- CRD: a denial in the CRD's own `x-kubernetes-validations` (api/crd.py places them). It travels with the
  CRD, so even an install that applies nothing else refuses it, and the API server's ratcheting lets an
  unchanged field be.
- POLICY_DENY: a denial the CRD's CEL cannot say, because it reads a schemaless field (CEL in a CRD sees only
  fields with a type): a ValidatingAdmissionPolicy with `validationActions: [Deny]`.
- POLICY_WARN: a warning, which kubectl prints: a ValidatingAdmissionPolicy with `[Warn]`, `failurePolicy:
  Ignore` (a warning never blocks). A rule that reads the operator's settings (`settings=True`) reads them as
  the policy's variables (admission/policies.py says why not a paramKind).
- WEBHOOK: a warning that needs other objects, which no CEL in the API server can read: served by the
  operator (admission/webhook.py), `failurePolicy: Ignore`, so a down operator blocks nobody.

The Python side of a rule gives the same verdict in the same words: admission/rules.py has one function per
rule, and the API models' validators hold the few that `llmpack render` must refuse too (`in_models`).
Messages are templates whose slots both sides fill alike (`Slot`); tests/cluster/test_admission.py holds the
two sides together on the real API server.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from llmpack.api.names import MAX_MODEL_NAME_LENGTH, NAME_PATTERN
from llmpack.quantity import MAX_LENGTH, QUANTITY_PATTERN, QUANTITY_SHAPE, UNIT_LIMITS


@dataclass(frozen=True)
class Settings:
    """What rules read of the operator's settings; in the cluster, variables of the policy (SETTINGS_VARIABLE)."""

    default_access_mode: str = "ReadWriteOnce"  # Helm defaults.storage.accessMode


SETTINGS_VARIABLE = {"default_access_mode": "defaultAccessMode"}


class Layer(StrEnum):
    CRD = "CRD validation rule"
    POLICY_DENY = "ValidatingAdmissionPolicy (Deny)"
    POLICY_WARN = "ValidatingAdmissionPolicy (Warn)"
    WEBHOOK = "webhook (warning)"


DENIALS = (Layer.CRD, Layer.POLICY_DENY)

# A free-form value is quoted in a message only when it is printable ASCII and this short: anything else would
# make the API server drop the message (line breaks, control characters) or print a wall of text.
QUOTE_MAX = 253
_QUOTABLE = "^[ -~]+$"


@dataclass(frozen=True)
class Slot:
    """A value a message shows: the CEL that reads it, and the words the message has instead where no value can be
    shown (the static message, which the API server prints when the CEL that builds the message fails). A
    `quoted` slot holds a free-form string, quoted when it is printable ASCII of at most QUOTE_MAX characters,
    else replaced by the fallback; any other holds a number or a value the schema bounds, shown as it is."""

    cel: str
    fallback: str = ""
    quoted: bool = False

    def show(self, value: object) -> str:
        """The Python side: the same text the CEL side makes of the same value."""
        text = str(value)
        if not self.quoted:
            return text
        return f"'{text}'" if len(text) <= QUOTE_MAX and re.fullmatch(_QUOTABLE, text) else self.fallback

    def expression(self) -> str:
        if not self.quoted:
            return f"string({self.cel})"
        return (f"(size({self.cel}) <= {QUOTE_MAX} && {self.cel}.matches('{_QUOTABLE}') ? "
                f"\"'\" + {self.cel} + \"'\" : {json.dumps(self.fallback)})")


_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Rule:
    """One rule. `cel` holds when the object passes. For the CRD, it runs at `at` (a path of properties from the
    object's root, where `self` and `oldSelf` are); for a policy, over `object`, `oldObject` and `variables`."""

    name: str
    layer: Layer
    field: str  # the field the finding names, as a path from the object's root
    message: str  # "<field>: <what is wrong and what to do>", with {slot}s
    cel: str | None = None
    at: tuple[str, ...] | None = None
    slots: Mapping[str, Slot] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    settings: bool = False  # reads the operator's settings (variables.<SETTINGS_VARIABLE>)
    in_models: bool = False  # its Python side is a validator of the API models, not a function in rules.py
    every_quantity: bool = False  # CRD: on every quantity in the schema, which names the field itself
    static: str | None = None  # the message where no value can be shown; default: the slots' fallbacks

    @property
    def level(self) -> str:
        return "error" if self.layer in DENIALS else "warning"

    @property
    def says(self) -> str:
        """The message without the field in front: what a validator relative to the field says."""
        return self.message.removeprefix(f"{self.field}: ")

    def text(self, **values: object) -> str:
        """The message with its slots filled from `values` (the Python side)."""
        return _SLOT.sub(lambda m: self.slots[m.group(1)].show(values[m.group(1)]), self.message)

    def static_message(self, named: bool = True) -> str:
        """The message where no value can be shown: `static`, or the message with every slot's fallback. Without
        the field in front unless `named` (the API server names a CRD rule's field itself)."""
        text = self.static or _SLOT.sub(lambda m: self.slots[m.group(1)].fallback, self.message)
        return text if named else text.removeprefix(f"{self.field}: ")

    def message_expression(self, named: bool = True) -> str | None:
        """CEL that builds the message with its slots filled, or None for a message without slots."""
        if not self.slots:
            return None
        template = self.message if named else self.says
        parts = []
        for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", template):
            if literal:
                parts.append(json.dumps(literal))
            if name:
                parts.append(self.slots[name].expression())
        return " + ".join(parts)

    @property
    def field_path(self) -> str | None:
        """For a CRD rule: the field it names, relative to where it runs (the API server's fieldPath)."""
        if self.at is None or self.every_quantity or self.field.startswith("metadata."):
            return None  # the API server takes no fieldPath into metadata: the message names the field
        prefix = ".".join(self.at)
        relative = self.field.removeprefix(prefix) if prefix else f".{self.field}"
        return relative or None


def cel_matches(text: str, pattern: str) -> bool:
    """CEL's `text.matches(pattern)`, in Python: an RE2 search, where `$` is the end of the text (Python's `$` also
    matches before a final newline). The patterns here use only ASCII classes, which both engines read alike."""
    return re.search(pattern.replace("$", r"\Z"), text) is not None


def bounded_quantity(value: str) -> str:
    """CEL: `value` (an int-or-string) is a quantity within our grammar, checked by length first. Every rule
    that calls quantity() checks this first: a value the schema refuses still reaches the CEL rules (the API
    server stops them only for type, enum, required and length errors), and quantity('1e99999999') alone costs
    the API server half a minute of CPU."""
    return f"(size(string({value})) <= {MAX_LENGTH} && string({value}).matches('{QUANTITY_PATTERN}'))"


# A Hugging Face repo id, ASCII only: every id it takes, huggingface_hub's validate_repo_id takes too (the
# downloader calls it), and the Hub names nothing outside it. Each part: a word character, then up to 94 of
# word characters, '-' and '.', then a word character; no '--' or '..'; not ending in .git.
_REPO_PART = "[A-Za-z0-9_]([A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
REPO_ID_PATTERN = f"^({_REPO_PART}/)?{_REPO_PART}$"
REPO_ID_FORBIDDEN = ("--", "..")
REPO_ID_FORBIDDEN_END = ".git"

# What schedulerConfig text must hold: the endpoint picker decodes its file as a Kubernetes object, which
# needs `kind: EndpointPickerConfig` (YAML or JSON). CEL cannot parse YAML, so both sides look for this line.
SCHEDULER_KIND_PATTERN = "(^|[^A-Za-z0-9_])[\"']?kind[\"']?[ \\t]*:[ \\t]*[\"']?EndpointPickerConfig([^A-Za-z0-9_]|$)"
SCHEDULER_TEXT_MAX = 65536  # characters: an endpoint picker's configuration takes a few hundred

GPU_VENDOR_NAMES = ("nvidia", "amd", "intel")


def _quantity_limits() -> str:
    """The digits allowed before the point, per unit, as quantity.py derives them: '18 digits, 15 with k or Ki, ...'."""
    by_limit: dict[int, list[str]] = {}
    for unit, limit in UNIT_LIMITS.items():
        by_limit.setdefault(limit, []).append(unit)
    said = []
    for limit, units in sorted(by_limit.items(), reverse=True):
        amount = f"{len(str(limit))} digits" if limit >= 9 else f"the number {limit}"
        named = " or ".join(u for u in units if u not in ("", "n", "u", "m"))
        said.append(f"{amount} with {named}" if named else f"{amount} before the point")
    return ", ".join(said)


_GROW_ADVICE = ("Keep the old size, or create a new LLMModel (or delete and re-create this one) to start with a "
                "smaller cache")
_NEW_MODEL = "create a new LLMModel (or delete and re-create this one)"
_MODEL_SPEC = ("spec", "model")
_STORAGE = ("spec", "model", "storage")
_SHRINK_GUARDS = " || ".join([
    "self.source == 'oci'", "self.storage.type != 'pvc'", "!has(oldSelf.storage.size)", "!has(self.storage.size)",
    f"!{bounded_quantity('self.storage.size')}", f"!{bounded_quantity('oldSelf.storage.size')}",
])
_SPEC = "object.spec"
_MODEL = f"{_SPEC}.model"
_NOT_OCI = f"{_MODEL}.source != 'oci'"
_TP = "(has(self.serving.tensorParallelism) ? self.serving.tensorParallelism : self.resources.gpu.count)"

RULES: tuple[Rule, ...] = (
    # -- denials in the CRD ------------------------------------------------------------------------------
    Rule("name-fits-derived-names", Layer.CRD, "metadata.name",
         f"metadata.name: must be at most {MAX_MODEL_NAME_LENGTH} characters: it names the model's Service and "
         "label values",
         cel=f"self.metadata.name.size() <= {MAX_MODEL_NAME_LENGTH}", at=()),
    Rule("name-is-a-service-name", Layer.CRD, "metadata.name",
         "metadata.name: must start with a letter and hold only lowercase letters, digits and '-': it names the "
         "model's Service",
         cel=f"self.metadata.name.matches('{NAME_PATTERN}')", at=()),
    Rule("oci-needs-an-image", Layer.CRD, "spec.model.image",
         "spec.model.image: required when spec.model.source is oci: the image that holds the weights under /models",
         cel="self.source != 'oci' || has(self.image)", at=_MODEL_SPEC, in_models=True),
    # Unset, the PVC is sized from the Hub (render/sizing.py); not with preload false: then nothing asks the Hub.
    Rule("pvc-needs-a-size", Layer.CRD, "spec.model.storage.size",
         "spec.model.storage.size: required when storage.type is pvc and preload is false (llmpack sizes the PVC "
         "from the Hub only when it downloads): size it 10-20% above the model's files (e.g. 30Gi for a 20 GB model)",
         cel="self.source == 'oci' || self.storage.type != 'pvc' || has(self.storage.size) || self.preload",
         at=_MODEL_SPEC, in_models=True),
    Rule("repo-id-is-valid", Layer.CRD, "spec.model.name",
         "spec.model.name: {name} is not a Hugging Face repo id: org/name, each part letters, digits, '-', '_' "
         "and '.', starting and ending with a letter, digit or '_', at most 96 characters, without '--' or '..', "
         "not ending in .git",
         cel=f"self.source == 'oci' || (self.name.matches('{REPO_ID_PATTERN}')"
             + "".join(f" && !self.name.contains('{s}')" for s in REPO_ID_FORBIDDEN)
             + f" && !self.name.endsWith('{REPO_ID_FORBIDDEN_END}'))",
         at=_MODEL_SPEC, slots={"name": Slot("self.name", "this name", quoted=True)}),
    Rule("parallelism-fits-gpus", Layer.CRD, "spec.serving.tensorParallelism",
         # No numbers in the message: the CRD's cost estimate takes a number made text as unbounded.
         "spec.serving.tensorParallelism: tensorParallelism x dataParallelism needs more GPUs per replica than "
         "resources.gpu.count: raise gpu.count or lower the parallelism",
         cel=f"self.resources.gpu.count <= 0 || self.serving.dataParallelism < 1 || "
             f"{_TP} <= self.resources.gpu.count / self.serving.dataParallelism",  # tp x dp <= count, no overflow
         at=("spec",)),
    Rule("size-is-positive", Layer.CRD, "spec.model.storage.size",
         "spec.model.storage.size: must be greater than zero",
         cel=f"!has(self.size) || !{bounded_quantity('self.size')} || "
             "quantity(string(self.size)).isGreaterThan(quantity('0'))",
         at=_STORAGE, in_models=True),
    # On every quantity (the API server names which in front of the message); its Python side is parse_quantity.
    Rule("quantity-in-range", Layer.CRD, "spec.model.storage.size",
         f"out of range: a quantity stays below 8Ei: at most {_quantity_limits()}; an exponent up to e18",
         cel=f"size(string(self)) > {MAX_LENGTH} || !string(self).matches('{QUANTITY_SHAPE}') || "
             f"string(self).matches('{QUANTITY_PATTERN}')",
         at=(), in_models=True, every_quantity=True),
    Rule("pvc-does-not-shrink", Layer.CRD, "spec.model.storage.size",
         "spec.model.storage.size: cannot shrink from {before} to {after}: a PVC can only grow. " + _GROW_ADVICE,
         cel=f"{_SHRINK_GUARDS} || "
             "quantity(string(self.storage.size)).compareTo(quantity(string(oldSelf.storage.size))) >= 0",
         at=_MODEL_SPEC, slots={"before": Slot("oldSelf.storage.size", "the old size"),
                                   "after": Slot("self.storage.size", "a smaller one")}),
    Rule("storage-type-is-fixed", Layer.CRD, "spec.model.storage.type",
         f"spec.model.storage.type: cannot change on an existing model: {_NEW_MODEL} to move the weights to other "
         "storage",
         # has(): the CRD checks every rule against the schema's defaults too, where no type is set
         cel="!has(self.type) || !has(oldSelf.type) || self.type == oldSelf.type", at=_STORAGE),
    Rule("storage-class-is-fixed", Layer.CRD, "spec.model.storage.storageClassName",
         "spec.model.storage.storageClassName: cannot change on an existing model: a PVC's class is fixed. "
         f"{_NEW_MODEL[0].upper()}{_NEW_MODEL[1:]} to use another class",
         cel="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || "
             "self.storageClassName == oldSelf.storageClassName)",
         at=_STORAGE),
    # -- denials the CRD cannot say: schedulerConfig has no schema, so its CEL cannot see it -----------------------
    Rule("scheduler-config-is-a-picker-config", Layer.POLICY_DENY, "spec.advanced.inferencePool.schedulerConfig",
         "spec.advanced.inferencePool.schedulerConfig: must be an EndpointPickerConfig: an object (kind, plugins, "
         f"schedulingProfiles), or the same written as YAML text (at most {SCHEDULER_TEXT_MAX} characters, "
         "with its kind: EndpointPickerConfig)",
         cel=f"!has({_SPEC}.advanced) || !has({_SPEC}.advanced.inferencePool) || "
             f"[dyn({_SPEC}.advanced.inferencePool)].all(p, !has(p.schedulerConfig) || "
             "type(p.schedulerConfig) == map || type(p.schedulerConfig) == null_type || "
             f"(type(p.schedulerConfig) == string && size(p.schedulerConfig) <= {SCHEDULER_TEXT_MAX} && "
             f"p.schedulerConfig.matches({json.dumps(SCHEDULER_KIND_PATTERN)})))",
         in_models=True),
    # -- warnings ------------------------------------------------------------------------------------------
    Rule("emptydir-preload-downloads-on-every-start", Layer.POLICY_WARN, "spec.model.storage.type",
         "spec.model.storage.type: emptyDir with preload: every pod restart downloads the model again; use "
         "storage.type pvc for anything but small models",
         cel=f"!({_NOT_OCI} && {_MODEL}.storage.type == 'emptyDir' && {_MODEL}.preload)"),
    Rule("emptydir-without-size-limit", Layer.POLICY_WARN, "spec.model.storage.size",
         "spec.model.storage.size: the emptyDir holding the weights has no size limit: it can fill the node's "
         "disk; set storage.type emptyDir with a size",
         # An OCI model copies into an emptyDir only when it opts out of the image volume.
         cel=f"!((({_MODEL}.source == 'oci' && has({_MODEL}.imageVolume) && !{_MODEL}.imageVolume) || "
             f"{_MODEL}.storage.type == 'emptyDir') && "
             f"!({_MODEL}.storage.type == 'emptyDir' && has({_MODEL}.storage.size)))"),
    Rule("oci-image-by-tag", Layer.POLICY_WARN, "spec.model.image",
         "spec.model.image: {image} is referenced by tag, and tags are mutable: pin it by digest "
         "(image@sha256:...) so every replica serves the same weights",
         cel=f"!({_MODEL}.source == 'oci' && has({_MODEL}.image) && !{_MODEL}.image.contains('@sha256:'))",
         slots={"image": Slot(f"{_MODEL}.image", "the image", quoted=True)}),
    Rule("replicas-share-one-node", Layer.POLICY_WARN, "spec.serving.replicas",
         "spec.serving.replicas: {replicas} replicas share a ReadWriteOnce PVC, so all of them must run on one "
         "node; use storage.accessMode ReadWriteMany with a network filesystem class to spread them",
         cel=f"!({_NOT_OCI} && {_MODEL}.storage.type == 'pvc' && "
             f"(has({_MODEL}.storage.accessMode) ? {_MODEL}.storage.accessMode : variables.defaultAccessMode) "
             f"== 'ReadWriteOnce' && {_SPEC}.serving.replicas > 1)",
         slots={"replicas": Slot(f"{_SPEC}.serving.replicas", "several")}, settings=True),
    Rule("model-larger-than-pvc", Layer.POLICY_WARN, "spec.model.storage.size",
         "spec.model.storage.size: the model needs {known} (the Hub's figure for its files), the PVC is {size}: "
         "nothing is downloaded until it fits; set spec.model.storage.size to {known} plus 15% or more",
         cel=" || ".join([
             "oldObject == null", "!has(oldObject.status)", "!has(oldObject.status.modelSize)",
             f"!has({_MODEL}.storage.size)", f"{_MODEL}.storage.type != 'pvc'",
             f"!{bounded_quantity('oldObject.status.modelSize')}", f"!{bounded_quantity(f'{_MODEL}.storage.size')}",
             f"quantity(string(oldObject.status.modelSize)).compareTo(quantity(string({_MODEL}.storage.size))) <= 0",
         ]),
         slots={"known": Slot("oldObject.status.modelSize"), "size": Slot(f"{_MODEL}.storage.size")},
         static="spec.model.storage.size: the model needs more than the PVC holds (the Hub's figure for its files): "
                "nothing is downloaded until it fits; set spec.model.storage.size to the model plus 15% or more"),
    Rule("gpu-type-names-no-vendor", Layer.POLICY_WARN, "spec.resources.gpu.type",
         f"spec.resources.gpu.type: {{type}} is not a GPU vendor ({', '.join(GPU_VENDOR_NAMES)}), so the pods ask "
         "for nvidia.com/gpu on any GPU node. type names the vendor only: to pick a GPU product, set "
         "resources.gpu.product (the node's nvidia.com/gpu.product label, e.g. NVIDIA-H100-80GB-HBM3) or "
         "advanced.vllm.nodeSelector",
         cel=f"{_SPEC}.resources.gpu.count == 0 || "
             f"{_SPEC}.resources.gpu.type.trim().lowerAscii() in {json.dumps(['', *GPU_VENDOR_NAMES])}",
         slots={"type": Slot(f"{_SPEC}.resources.gpu.type", "this value", quoted=True)}),
    # -- a warning that reads other objects: the operator's webhook (its slots have no CEL: Python fills them) -------
    Rule("model-id-owned-elsewhere", Layer.WEBHOOK, "spec.model.name",
         "spec.model.name: model id {model_id} is already claimed by {owner} (since {since}): the shared hostnames "
         "route it there, not to this model (ExternalEndpointReady=False, ModelIdConflict), until that one is "
         "deleted or its id changes; this model still serves inside the cluster",
         slots={"model_id": Slot(""), "owner": Slot(""), "since": Slot("")}),
    Rule("name-taken-by-other-kind", Layer.WEBHOOK, "metadata.name",
         "metadata.name: {other} {namespace}/{name} already exists: an LLMModel and a PassthroughModel of one name "
         "would own the same objects (key Secret, routes, policies), so only the older is served and this one "
         "reports NameConflict until it is renamed",
         slots={"other": Slot(""), "namespace": Slot(""), "name": Slot("")}),
    Rule("passthrough-id-owned-elsewhere", Layer.WEBHOOK, "spec.models.declared",
         "spec.models.declared: model id {model_id} is already claimed by {owner} (since {since}): the shared "
         "hostnames route it there, not to this PassthroughModel (its route leaves the id out and its condition "
         "names the owner), until that one is deleted or its id changes",
         slots={"model_id": Slot(""), "owner": Slot(""), "since": Slot("")}),
    Rule("passthrough-catch-all-owned-elsewhere", Layer.WEBHOOK, "spec.models.catchAll",
         "spec.models.catchAll: the catch-all is already claimed by {owner} (since {since}): ids nobody claims go "
         "there, not to this PassthroughModel, until that one is deleted or drops it; exact ids come first, "
         "whoever claims them",
         slots={"owner": Slot(""), "since": Slot("")}),
)

BY_NAME: Mapping[str, Rule] = MappingProxyType({rule.name: rule for rule in RULES})


def rule(name: str) -> Rule:
    return BY_NAME[name]


def in_layer(layer: Layer) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if r.layer == layer)
