"""Small builders of LLMModel objects for unit tests."""

from __future__ import annotations

from typing import Any

from llmpack.api import LLMModel


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def body(spec: dict[str, Any] | None = None, name: str = "qwen", namespace: str | None = "models",
         uid: str | None = "1234-uid") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if uid:
        meta["uid"] = uid
    base = {"model": {"name": "Qwen/Qwen3-8B", "storage": {"size": "30Gi"}}}
    return {
        "apiVersion": "llm.nebari.dev/v1alpha1",
        "kind": "LLMModel",
        "metadata": meta,
        "spec": merge(base, spec or {}),
    }


def model(spec: dict[str, Any] | None = None, **kwargs: Any) -> LLMModel:
    return LLMModel.from_body(body(spec, **kwargs))
