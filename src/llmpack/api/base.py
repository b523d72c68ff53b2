"""Shared pieces of the API models: camelCase field names, quantities, nested defaults, free-form objects."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from llmpack.quantity import MAX_LENGTH, QUANTITY_SHAPE, UNIT_LIMITS, QuantityError, parse_quantity


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


# A Kubernetes quantity within llmpack's bounds (quantity.py), kept in the user's spelling ("30Gi") so rendered
# objects read as written. The CRD holds the same bounds: the pattern and length for strings, the range
# for integers (exclusive of 10**18, a float64 that the API server compares exactly: 18 digits at most).
_INTEGER_BOUND = UNIT_LIMITS[""] + 1
Quantity = Annotated[
    str,
    BeforeValidator(_as_quantity),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": -_INTEGER_BOUND, "exclusiveMinimum": True,
                 "maximum": _INTEGER_BOUND, "exclusiveMaximum": True},
                {"type": "string", "pattern": QUANTITY_SHAPE, "maxLength": MAX_LENGTH},
            ],
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
