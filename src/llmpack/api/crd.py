"""The CustomResourceDefinition for llmmodels.llm.nebari.dev, derived from the pydantic models.

Never edit the CRD by hand: change the models and run `llmpack crd`. Pydantic's JSON schema is turned
into a Kubernetes structural schema (refs inlined, Optional unwrapped, titles dropped), and the
cross-field rules that a cluster without our webhook must still enforce are added as CEL.
"""

from __future__ import annotations

from typing import Any

from llmpack.api.model import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from llmpack.api.names import MAX_MODEL_NAME_LENGTH
from llmpack.api.spec import LLMModelSpec
from llmpack.api.status import LLMModelStatus
from llmpack.quantity import QUANTITY_PATTERN


def _bounded(value: str) -> str:
    """CEL: `value` (an int-or-string) is a quantity within our grammar. Every rule that calls quantity()
    checks this first: a value that fails the schema's pattern still reaches the CEL rules (the API server
    stops them only for type, enum, required and length errors), and quantity('1e99999999') alone costs
    the API server half a minute of CPU."""
    return f"string({value}).matches('{QUANTITY_PATTERN}')"


# (path into the spec schema, CEL rule, message, fieldPath relative to that path)
SPEC_RULES: list[tuple[tuple[str, ...], str, str, str]] = [
    (
        ("model",),
        "self.source != 'oci' || has(self.image)",
        "spec.model.image is required when spec.model.source is oci (the image that holds the weights "
        "under /models)",
        ".image",
    ),
    (
        ("model",),
        "self.source == 'oci' || self.storage.type != 'pvc' || has(self.storage.size) || self.preload",
        "spec.model.storage.size is required when storage.type is pvc and preload is false (llmpack sizes the "
        "PVC from the Hub only when it downloads): size it 10-20% above the model's files (e.g. 30Gi for a 20 GB "
        "model)",
        ".storage.size",
    ),
    (
        ("model",),
        "self.source == 'oci' || self.storage.type != 'pvc' || !has(oldSelf.storage.size) || !has(self.storage.size)"
        f" || !{_bounded('self.storage.size')} || !{_bounded('oldSelf.storage.size')}"
        " || quantity(string(self.storage.size)).compareTo(quantity(string(oldSelf.storage.size))) >= 0",
        "spec.model.storage.size cannot shrink: a PVC can only grow. Keep the old size, or create a new "
        "LLMModel (or delete and re-create this one) to start with a smaller cache",
        ".storage.size",
    ),
    (
        ("model", "storage"),
        "!has(self.type) || !has(oldSelf.type) || self.type == oldSelf.type",
        "spec.model.storage.type cannot change on an existing model: create a new LLMModel (or delete and "
        "re-create this one) to move the weights to other storage",
        ".type",
    ),
    (
        ("model", "storage"),
        "has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || "
        "self.storageClassName == oldSelf.storageClassName)",
        "spec.model.storage.storageClassName cannot change on an existing model: a PVC's class is fixed. "
        "Create a new LLMModel (or delete and re-create this one) to use another class",
        ".storageClassName",
    ),
    (
        ("model", "storage"),
        f"!has(self.size) || !{_bounded('self.size')} || quantity(string(self.size)).isGreaterThan(quantity('0'))",
        "spec.model.storage.size must be greater than zero",
        ".size",
    ),
]

ROOT_RULES: list[dict[str, str]] = [
    {
        "rule": f"self.metadata.name.size() <= {MAX_MODEL_NAME_LENGTH}",
        "message": f"metadata.name must be at most {MAX_MODEL_NAME_LENGTH} characters: it names the "
        "model's Service and label values",
    },
    {
        "rule": "self.metadata.name.matches('^[a-z]')",
        "message": "metadata.name must start with a letter: it names the model's Service",
    },
]

PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.replicas.ready"},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.replicas.desired", "priority": 1},
    {"name": "Progress", "type": "string", "jsonPath": ".status.download.percent", "priority": 1},
    {"name": "Revision", "type": "string", "jsonPath": ".status.resolvedRevision", "priority": 1},
    {"name": "External", "type": "string", "jsonPath": ".status.endpoints.external", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Rewrite one pydantic JSON-schema node into the subset Kubernetes accepts."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:  # Optional[X] is X: absence, not null, means unset
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _structural({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs", "additionalProperties") and value is False:
            continue
        if key in ("title", "$defs"):
            continue
        if key == "default" and value is None:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "x-kubernetes-int-or-string":
            out[key] = value
        elif key == "anyOf" and node.get("x-kubernetes-int-or-string"):
            # Structural int-or-string: the types in anyOf, their bounds hoisted beside it (a pattern and a
            # length apply to strings only, a minimum and maximum to numbers only).
            out[key] = [{"type": o["type"]} for o in value]
            for option in value:
                out.update({k: v for k, v in option.items() if k != "type"})
        else:
            out[key] = _structural(value, defs)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out.setdefault("x-kubernetes-preserve-unknown-fields", True)
    return out


def _schema_of(model: Any) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return dict(_structural(raw, raw.get("$defs", {})))


def _at(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for part in path:
        schema = schema["properties"][part]
    return schema


def spec_schema() -> dict[str, Any]:
    schema = _schema_of(LLMModelSpec)
    for path, rule, message, field_path in SPEC_RULES:
        _at(schema, path).setdefault("x-kubernetes-validations", []).append(
            {"rule": rule, "message": message, "fieldPath": field_path}
        )
    return schema


def status_schema() -> dict[str, Any]:
    return _schema_of(LLMModelStatus)


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["all"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A large language model served by vLLM, with its weights cached once.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                            "x-kubernetes-validations": ROOT_RULES,
                        }
                    },
                }
            ],
        },
    }
