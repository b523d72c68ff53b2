"""What a pass parses of its model, kept while the model says the same. Every pass (~19 a model to Ready at 200
models) parsed the LLMModel's spec and its previous status with pydantic, ~4% of the operator's CPU (py-spy,
bench/operator_scale.py), though the spec changes only when a user edits it and the status only when we
write it. The parsed objects are frozen pydantic models: sharing them between passes is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from llmpack.operator.store import Key, canonical_json

T = TypeVar("T")


class Parsed(Generic[T]):
    """The last value parsed from each model's input, returned again while that input encodes to the same JSON
    (encoding and comparing take microseconds; validating takes a tenth of a millisecond). A parse that raises
    is not kept."""

    def __init__(self, parse: Callable[[Any], T]) -> None:
        self._parse = parse
        self._kept: dict[Key, tuple[bytes, T]] = {}

    def get(self, key: Key, source: Any) -> T:
        encoded = canonical_json(source)
        kept = self._kept.get(key)
        if kept is not None and kept[0] == encoded:
            return kept[1]
        value = self._parse(source)
        self._kept[key] = (encoded, value)
        return value

    def forget(self, key: Key) -> None:
        self._kept.pop(key, None)

