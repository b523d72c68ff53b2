"""A pass reuses its model's parsed spec until the spec changes; a status write alone parses nothing again."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llmpack.api import LLMModel
from llmpack.operator.parsed import Parsed
from llmpack.operator.store import unwritten
from tests.unit.factories import body, merge

KEY = ("models", "qwen")


def counting() -> tuple[Parsed[LLMModel], list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def parse(source: dict[str, Any]) -> LLMModel:
        seen.append(source)
        return LLMModel.from_body(source)

    return Parsed(parse), seen


def test_a_status_write_reuses_the_parsed_spec_and_an_edit_is_seen_at_once() -> None:
    parsed, seen = counting()
    first = merge(body(), {"metadata": {"resourceVersion": "1"}})
    model = parsed.get(KEY, unwritten(first))
    written = merge(first, {"metadata": {"resourceVersion": "2"}, "status": {"phase": "Pending"}})
    assert parsed.get(KEY, unwritten(written)) is model
    assert len(seen) == 1

    edited = merge(written, {"metadata": {"resourceVersion": "3", "generation": 2},
                             "spec": {"model": {"name": "meta-llama/Llama-3.1-8B"}}})
    assert parsed.get(KEY, unwritten(edited)).spec.model.name == "meta-llama/Llama-3.1-8B"
    labelled = merge(edited, {"metadata": {"labels": {"team": "a"}}})  # metadata alone: no new generation
    assert parsed.get(KEY, unwritten(labelled)).metadata.labels == {"team": "a"}
    assert len(seen) == 3


def test_each_model_keeps_its_own_and_a_forgotten_or_recreated_one_is_parsed_again() -> None:
    parsed, seen = counting()
    qwen, llama = body(), body(name="llama")
    parsed.get(KEY, qwen)
    parsed.get(("models", "llama"), llama)
    parsed.get(KEY, qwen)
    assert len(seen) == 2
    parsed.forget(KEY)
    parsed.get(KEY, qwen)
    assert len(seen) == 3
    assert parsed.get(KEY, body(uid="another-uid")).metadata.uid == "another-uid"  # deleted and created again


def test_a_spec_that_does_not_parse_raises_every_time() -> None:
    parsed, seen = counting()
    broken = body({"model": {"storage": {"size": "thirty"}}})
    for _ in range(2):
        with pytest.raises(ValidationError):
            parsed.get(KEY, broken)
    assert len(seen) == 2
