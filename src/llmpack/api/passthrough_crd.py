"""The CustomResourceDefinition for passthroughmodels.llm.nebari.dev, derived from the pydantic models like
LLMModel's (api/crd.py), with CEL for what a cluster without our operator running must still refuse: a
hostname with a scheme, path or port; a spec that routes no model id; both endpoints off.
"""

from __future__ import annotations

from typing import Any

from llmpack.api.crd import add_rules, definition, object_schema, schema_of
from llmpack.api.names import LABEL_MAX
from llmpack.api.passthrough import (
    ENDPOINTS_MESSAGE,
    HOSTNAME_PATTERN,
    HOSTNAME_RULES,
    MODELS_MESSAGE,
    PASSTHROUGH_KIND,
    PASSTHROUGH_PLURAL,
    PASSTHROUGH_SINGULAR,
    PassthroughModelSpec,
    PassthroughModelStatus,
)

SPEC_RULES: list[tuple[tuple[str, ...], str, str, str]] = [
    *((("provider",), f"!self.hostname.contains('{part}')", message, ".hostname") for part, message in HOSTNAME_RULES),
    # On the spec, not on models: a default of {} is itself checked against the rules of its node.
    ((), "has(self.models) && ((has(self.models.catchAll) && self.models.catchAll) || "
         "(has(self.models.declared) && size(self.models.declared) > 0))", MODELS_MESSAGE, ".models"),
    (("endpoints",), "(!has(self.external) || !has(self.external.enabled) || self.external.enabled) || "
                     "(!has(self.internal) || !has(self.internal.enabled) || self.internal.enabled)",
     ENDPOINTS_MESSAGE, ".external.enabled"),
]

ROOT_RULES: list[dict[str, str]] = [
    {
        "rule": f"self.metadata.name.size() <= {LABEL_MAX}",
        "message": f"metadata.name must be at most {LABEL_MAX} characters: it is a label value of every object "
        "the PassthroughModel owns",
    },
]

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Provider", "type": "string", "jsonPath": ".spec.provider.hostname"},
    {"name": "Models", "type": "string", "jsonPath": ".status.models"},
    {"name": "External", "type": "string", "jsonPath": ".status.endpoints.external", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def spec_schema() -> dict[str, Any]:
    schema = schema_of(PassthroughModelSpec)
    schema["required"] = [name for name in schema["required"] if name != "models"]  # absent: the rule says why
    schema["properties"]["provider"]["properties"]["hostname"]["pattern"] = HOSTNAME_PATTERN
    declared = schema["properties"]["models"]["properties"]["declared"]
    declared["x-kubernetes-list-type"] = "set"  # an id listed twice is refused by the API server
    return add_rules(schema, SPEC_RULES)


def crd() -> dict[str, Any]:
    root = object_schema("An external OpenAI-compatible provider behind the shared gateway, API keys and OIDC "
                         "groups.", spec_schema(), schema_of(PassthroughModelStatus))
    root["x-kubernetes-validations"] = ROOT_RULES
    return definition(kind=PASSTHROUGH_KIND, plural=PASSTHROUGH_PLURAL, singular=PASSTHROUGH_SINGULAR,
                      short_names=["ptm"], columns=PRINTER_COLUMNS, root=root)
