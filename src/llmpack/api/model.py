"""The LLMModel object as a whole: metadata, spec and status."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from llmpack.api.spec import LLMModelSpec
from llmpack.api.status import LLMModelStatus

GROUP = "llm.nebari.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "LLMModel"
PLURAL = "llmmodels"
SINGULAR = "llmmodel"
SHORT_NAMES = ["llm"]


class ObjectMeta(BaseModel):
    """The part of metav1.ObjectMeta we use; the rest is kept but ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1)
    namespace: str | None = None  # absent in manifests that rely on kubectl's namespace
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Object(BaseModel):
    """What every object of our API has beside its spec and status: its metadata, and how it is parsed."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Self:
        """Parse an object as read from the API server or a manifest (raises pydantic.ValidationError)."""
        return cls.model_validate(body)


class LLMModel(Object):
    api_version: Literal["llm.nebari.dev/v1alpha1"] = Field("llm.nebari.dev/v1alpha1", alias="apiVersion")
    kind: Literal["LLMModel"] = "LLMModel"
    spec: LLMModelSpec
    status: LLMModelStatus | None = None
