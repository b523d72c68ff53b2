"""Shared pieces of the API models: camelCase field names, quantities, nested defaults, free-form objects."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from llmpack.quantity import QUANTITY_PATTERN, QuantityError, parse_quantity


class ApiModel(BaseModel):
    """A part of the LLMModel API: camelCase on the wire, unknown fields rejected (typos fail loudly)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server holds it: camelCase, unset optional fields omitted."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _as_quantity(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a quantity such as 30Gi")
    try:
        parse_quantity(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None
    return str(value)


# A Kubernetes quantity, kept in the user's spelling ("30Gi") so rendered objects read as written.
Quantity = Annotated[
    str,
    BeforeValidator(_as_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string", "pattern": QUANTITY_PATTERN}],
            "x-kubernetes-int-or-string": True,
        }
    ),
]

# Kubernetes objects we pass through untouched (tolerations, affinity, env vars): the API server keeps
# every field, and the schema does not pin us to one Kubernetes version's shape of them.
FreeObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]

M = TypeVar("M", bound=BaseModel)


def nested(model: type[M], description: str) -> Any:
    """A sub-object that defaults to its own defaults, also in the CRD (so `has()` in CEL holds)."""
    return Field(default_factory=model, description=description, json_schema_extra={"default": {}})
