"""The CustomResourceDefinition for llmmodels.llm.nebari.dev, derived from the pydantic models.

Never edit the CRD by hand: change the models and run `make crd`. Pydantic's JSON schema is turned into a
Kubernetes structural schema (refs inlined, Optional unwrapped, titles dropped), and every rule of the
admission table (admission/table.py) whose layer is the CRD is placed where it runs, as CEL.
"""

from __future__ import annotations

from typing import Any

from llmpack.admission.table import Layer, Rule, in_layer
from llmpack.api.model import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from llmpack.api.spec import LLMModelSpec
from llmpack.api.status import LLMModelStatus
from llmpack.quantity import QUANTITY_SHAPE

PRINTER_COLUMNS: list[dict[str, Any]] = [
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


def schema_of(model: Any) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return dict(_structural(raw, raw.get("$defs", {})))


def _at(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for part in path:
        schema = schema["properties"][part]
    return schema


def spec_schema() -> dict[str, Any]:
    return schema_of(LLMModelSpec)


def status_schema() -> dict[str, Any]:
    return schema_of(LLMModelStatus)


def validation(rule: Rule) -> dict[str, Any]:
    """One x-kubernetes-validations entry: the rule, its message (with the values shown, when it has slots), and
    the field it names."""
    named = rule.field_path is None and not rule.every_quantity  # else the API server names the field in front
    out: dict[str, Any] = {"rule": rule.cel, "message": rule.static_message(named)}
    if expression := rule.message_expression(named):
        out["messageExpression"] = expression
    if rule.field_path:
        out["fieldPath"] = rule.field_path
    return out


def _quantities(node: Any) -> list[dict[str, Any]]:
    """Every quantity in a schema: an int-or-string whose strings have the quantity's shape."""
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("x-kubernetes-int-or-string") and node.get("pattern") == QUANTITY_SHAPE else []
    for key in ("properties",):
        for child in node.get(key, {}).values():
            found += _quantities(child)
    for key in ("items", "additionalProperties"):
        found += _quantities(node.get(key))
    return found


def place_rules(root: dict[str, Any]) -> dict[str, Any]:
    """The object's schema with every CRD rule of the admission table where it runs."""
    for rule in in_layer(Layer.CRD):
        for node in _quantities(root) if rule.every_quantity else [_at(root, rule.at or ())]:
            node.setdefault("x-kubernetes-validations", []).append(validation(rule))
    return root


def definition(*, kind: str, plural: str, singular: str, short_names: list[str], columns: list[dict[str, Any]],
               root: dict[str, Any]) -> dict[str, Any]:
    """A namespaced CRD of our group with one version, a status subresource and the given object schema."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": short_names,
                "categories": ["all"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def object_schema(description: str, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def add_rules(schema: dict[str, Any], rules: list[tuple[tuple[str, ...], str, str, str]]) -> dict[str, Any]:
    """Attach (path, CEL rule, message, fieldPath) rules to the schema nodes at their paths."""
    for path, rule, message, field_path in rules:
        _at(schema, path).setdefault("x-kubernetes-validations", []).append(
            {"rule": rule, "message": message, "fieldPath": field_path}
        )
    return schema


def crd() -> dict[str, Any]:
    root = object_schema("A large language model served by vLLM, with its weights cached once.", spec_schema(),
                         status_schema())
    return definition(kind=KIND, plural=PLURAL, singular=SINGULAR, short_names=SHORT_NAMES, columns=PRINTER_COLUMNS,
                      root=place_rules(root))
