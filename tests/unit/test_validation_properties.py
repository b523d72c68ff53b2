"""Validation over arbitrary input: a clear error naming a field, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmpack.manifests import Document, ManifestError, parse_model
from tests.unit.strategies import model_bodies

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["model", "model.name", "model.source", "model.storage", "model.storage.size", "model.storage.type",
          "model.preload", "serving.replicas", "resources.gpu.count", "serving", "advanced.vllm.extraEnv"]


def _set(body: dict[str, Any], dotted: str, value: Any) -> None:
    node = body["spec"]
    *parents, leaf = dotted.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[leaf] = value


@given(model_bodies(), st.sampled_from(FIELDS), json_values)
def test_a_corrupted_field_is_reported_in_one_line_or_accepted(body: dict[str, Any], field: str, value: Any) -> None:
    _set(body, field, value)
    try:
        parse_model(Document("m.yaml", 0, body))
    except ManifestError as exc:
        message = str(exc)
        assert message.startswith("m.yaml: LLMModel ")
        assert "\n" not in message
        assert "spec." in message  # names the field


@given(model_bodies())
def test_every_generated_valid_model_parses(body: dict[str, Any]) -> None:
    parse_model(Document("m.yaml", 0, body))
