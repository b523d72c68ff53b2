"""The PassthroughModel API (llm.nebari.dev/v1alpha1): an external OpenAI-compatible provider (OpenRouter,
api.openai.com, a vLLM elsewhere) behind the same hostnames, API keys and OIDC groups as the models served
in the cluster. Field for field the LLM Serving Pack's: its manifests apply unchanged.

Nothing runs in the cluster for it: the operator writes the gateway's view of the provider (a Backend, its TLS,
an AIServiceBackend and the provider key sent upstream) and the same routes, policies and key objects an
LLMModel gets.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from llmpack.api.base import ApiModel, nested
from llmpack.api.model import Object
from llmpack.api.spec import DURATION_PATTERN, Access, SecretName
from llmpack.api.status import Condition, EndpointStatus

PASSTHROUGH_KIND = "PassthroughModel"
PASSTHROUGH_PLURAL = "passthroughmodels"
PASSTHROUGH_SINGULAR = "passthroughmodel"
CREDENTIAL_KEY = "apiKey"  # the key of the credential Secret that holds the provider's API key
DEFAULT_TIMEOUT = "120s"  # the pack's fixed request timeout for provider routes
# One AIGatewayRoute rule holds at most 128 matches (both AI Gateway releases): one per declared id.
MAX_DECLARED = 128
MAX_MODEL_ID = 256
HOSTNAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$"
SCHEMA_VERSION_PATTERN = r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$"
# A model id as clients write it and the gateway matches it exactly (printable ASCII, no spaces).
MODEL_ID_PATTERN = r"^[!-~]+$"

# (what the hostname must not hold, the message): the same words from the CRD's CEL and from `llmpack render`.
HOSTNAME_RULES: tuple[tuple[str, str], ...] = (
    ("://", "spec.provider.hostname is a bare DNS name such as openrouter.ai: remove the scheme (https://)"),
    ("/", "spec.provider.hostname is a bare DNS name such as openrouter.ai: remove the path (the API's path "
          "prefix goes in spec.provider.schemaVersion, e.g. api/v1)"),
    (":", "spec.provider.hostname is a bare DNS name such as openrouter.ai: remove the port (set "
          "spec.provider.port)"),
)
MODELS_MESSAGE = ("spec.models must route something: set catchAll: true, or list at least one id in "
                  "declared")
ENDPOINTS_MESSAGE = ("spec.endpoints: at least one of external.enabled and internal.enabled must be true (both "
                     "off would route nothing; delete the PassthroughModel instead)")

ModelId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_MODEL_ID, pattern=MODEL_ID_PATTERN)]


class Provider(ApiModel):
    hostname: str = Field(min_length=1, max_length=253,
                          description="The provider's DNS name, e.g. openrouter.ai (no scheme, path or port).")
    port: int = Field(443, ge=1, le=65535, description="The provider's TLS port.")
    schema_version: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=SCHEMA_VERSION_PATTERN)] \
        = Field("v1", description="The provider's API path prefix: v1 for api.openai.com, api/v1 for OpenRouter.")
    credential_secret_name: SecretName = Field(
        description=f"Secret in this namespace whose key {CREDENTIAL_KEY} holds the provider's API key; the "
        "gateway sends it upstream, clients never see it.")

    @model_validator(mode="after")
    def _hostname_is_bare(self) -> Provider:
        for part, message in HOSTNAME_RULES:
            if part in self.hostname:
                raise ValueError(f"hostname: {message.removeprefix('spec.provider.hostname ')}")
        if not re.match(HOSTNAME_PATTERN, self.hostname):
            raise ValueError("hostname: must be a DNS name such as openrouter.ai (letters, digits, - and .)")
        return self


class PassthroughModels(ApiModel):
    catch_all: bool = Field(False, description="Route every model id that no exact id (a served LLMModel, a "
                            "declared id) claims on the shared hostnames.")
    declared: list[ModelId] = Field(default_factory=list, max_length=MAX_DECLARED, description="Model ids "
                                    "routed exactly, and listed by the gateway's /v1/models.")

    @model_validator(mode="after")
    def _routes_something(self) -> PassthroughModels:
        if not self.catch_all and not self.declared:
            raise ValueError(MODELS_MESSAGE.removeprefix("spec.models "))
        if len(set(self.declared)) != len(self.declared):
            raise ValueError("declared: lists an id twice")
        return self


class EndpointToggle(ApiModel):
    enabled: bool = True


class PassthroughEndpoints(ApiModel):
    external: EndpointToggle = nested(EndpointToggle, "The public, API-key protected route.")
    internal: EndpointToggle = nested(EndpointToggle, "The in-organisation, OIDC protected route.")
    request_timeout: str = Field(DEFAULT_TIMEOUT, pattern=DURATION_PATTERN,
                                 description="Gateway request timeout (a duration such as 120s or 10m).")

    @model_validator(mode="after")
    def _one_side_on(self) -> PassthroughEndpoints:
        if not self.external.enabled and not self.internal.enabled:
            raise ValueError(ENDPOINTS_MESSAGE.removeprefix("spec.endpoints: "))
        return self


class PassthroughModelSpec(ApiModel):
    provider: Provider
    # Required here; optional in the CRD, where it defaults to {} so that its CEL rule says what is missing.
    models: PassthroughModels = Field(description="Which model ids reach the provider.")
    access: Access = Field(description="Who may use it: public, or OIDC groups (as for LLMModel).")
    endpoints: PassthroughEndpoints = nested(PassthroughEndpoints, "Routes to the provider.")


class PassthroughPhase(StrEnum):
    PENDING = "Pending"  # a route waits (a CRD, the gateway's verdict)
    READY = "Ready"      # the backend is configured and every enabled side is routed
    ERROR = "Error"      # the backend cannot be configured (credential Secret) or a route was refused


class PassthroughModelStatus(ApiModel):
    phase: PassthroughPhase | None = None
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    models: str | None = Field(None, description="What is routed to the provider, for `kubectl get`.")
    endpoints: EndpointStatus | None = None
    model_ids: list[str] | None = Field(None, description="The declared ids it claims on the shared hostnames.")
    catch_all: bool | None = Field(None, description="Whether it claims the catch-all.")
    model_ids_claimed_at: str | None = Field(
        None, description="When it started claiming these ids: the older claim of an id owns it.")


class PassthroughModel(Object):
    api_version: Literal["llm.nebari.dev/v1alpha1"] = Field("llm.nebari.dev/v1alpha1", alias="apiVersion")
    kind: Literal["PassthroughModel"] = "PassthroughModel"
    spec: PassthroughModelSpec
    status: PassthroughModelStatus | None = None


def models_summary(models: PassthroughModels) -> str:
    """What `kubectl get passthroughmodels` shows in its Models column."""
    parts = [f"{len(models.declared)} declared"] if models.declared else []
    return ", ".join([*parts, *(["catch-all"] if models.catch_all else [])])
