"""The LLMModel API (llm.nebari.dev/v1alpha1): typed models, the CRD derived from them, derived names."""

from llmpack.api.model import API_VERSION, GROUP, KIND, PLURAL, VERSION, LLMModel, ObjectMeta
from llmpack.api.spec import (
    AccessMode,
    LLMModelSpec,
    Model,
    Source,
    Storage,
    StorageType,
    UpdateStrategy,
)
from llmpack.api.status import Condition, ConditionStatus, Download, LLMModelStatus, Phase, Replicas

__all__ = [
    "API_VERSION", "GROUP", "KIND", "PLURAL", "VERSION",
    "AccessMode", "Condition", "ConditionStatus", "Download", "LLMModel", "LLMModelSpec", "LLMModelStatus",
    "Model", "ObjectMeta", "Phase", "Replicas", "Source", "Storage", "StorageType", "UpdateStrategy",
]
