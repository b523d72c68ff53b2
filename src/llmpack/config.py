"""Operator settings: one typed object, read from Helm-style values and LLMPACK_* environment variables.

Precedence, lowest first: built-in defaults, a values file (the chart's keys, e.g.
`defaults.storage.storageClassName`), environment variables. Renderers receive a Config; they never
read the environment themselves.

A values file may also be the LLM Serving Pack's, with the chart's one rule for a setting spelt two ways:
our key when it is set (not empty, not null), else the pack's, else the default. Images the pack names for
its own programs are never used (docs/install.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmpack import __version__
from llmpack.api.spec import AccessMode

DEFAULT_DOWNLOADER_IMAGE = f"ghcr.io/nebari-dev/llmpack/model-downloader:{__version__}"
DEFAULT_SERVING_IMAGE = "vllm/vllm-openai:v0.11.0"
DEFAULT_EPP_IMAGE = "ghcr.io/llm-d/llm-d-inference-scheduler:v0.8.0"
FIELD_MANAGER = "llmpack"


class ConfigError(ValueError):
    """Settings that cannot be used; the message names the key and the source."""


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    downloader_image: str = Field(DEFAULT_DOWNLOADER_IMAGE, min_length=1)
    serving_image: str = Field(DEFAULT_SERVING_IMAGE, min_length=1)
    storage_class_name: str = Field("", description="Empty: the cluster's default StorageClass.")
    access_mode: AccessMode = AccessMode.READ_WRITE_ONCE
    watch_namespaces: tuple[str, ...] = Field((), description="Empty: every namespace.")
    # The pod's fsGroup: files the downloader writes stay readable by vLLM, whatever uid each runs as.
    fs_group: int = Field(65532, ge=0)
    # The endpoint picker (llm-d inference scheduler) in front of each model's InferencePool.
    epp_image: str = Field(DEFAULT_EPP_IMAGE, min_length=1)
    # Routing: every model behind https://llm.<base_domain> (external) and https://llm-internal.<base_domain>.
    base_domain: str = Field("", description="Empty: routes are applied but no endpoint URL is reported.")
    external_gateway_name: str = Field("llm-gateway", min_length=1)
    external_gateway_namespace: str = Field("envoy-gateway-system", min_length=1)
    internal_gateway_name: str = Field("llm-gateway", min_length=1)
    internal_gateway_namespace: str = Field("envoy-gateway-system", min_length=1)
    monitoring_namespace: str = Field("monitoring", description="May scrape vLLM's metrics on port 8000.")
    manage_listeners: bool = Field(False, description="Merge the llm-https listeners into the Gateways.")
    tls_secret_name: str = Field("llm-gateway-tls", min_length=1)
    tls_secret_namespace: str = Field("", description="Empty: the Gateway's own namespace.")
    # The internal endpoint's OIDC provider; without an issuer the internal route is not applied.
    oidc_issuer: str = ""
    oidc_jwks_uri: str = Field("", description="Empty: Keycloak's <issuer>/protocol/openid-connect/certs.")
    oidc_groups_claim: str = Field("groups", min_length=1)
    oidc_username_claim: str = Field("preferred_username", min_length=1)
    oidc_audience: str = ""
    # The key manager's ServiceAccount: with one, key objects outlive their model and get a Role for it.
    key_manager_service_account: str = Field(
        "", pattern=r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$",
        description="namespace/name; empty: no key manager")
    # `llmpack run` serves Prometheus metrics on http://0.0.0.0:<port>/metrics (--metrics overrides).
    metrics_port: int = Field(0, ge=0, le=65535, description="0: no metrics endpoint.")
    # At start, install or replace our CRDs unless they are exactly ours (operator/crds.py); off: only check.
    manage_crds: bool = True

    @property
    def jwks_uri(self) -> str:
        return self.oidc_jwks_uri or f"{self.oidc_issuer.rstrip('/')}/protocol/openid-connect/certs"

    @property
    def gateway_namespaces(self) -> tuple[str, ...]:
        return tuple(sorted({self.external_gateway_namespace, self.internal_gateway_namespace}))


# (values-file path, environment variable, Config field)
SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("modelDownloader.image", "LLMPACK_DOWNLOADER_IMAGE", "downloader_image"),
    ("defaults.serving.image", "LLMPACK_SERVING_IMAGE", "serving_image"),
    ("defaults.storage.storageClassName", "LLMPACK_STORAGE_CLASS_NAME", "storage_class_name"),
    ("defaults.storage.accessMode", "LLMPACK_STORAGE_ACCESS_MODE", "access_mode"),
    ("watchNamespaces", "LLMPACK_WATCH_NAMESPACES", "watch_namespaces"),
    ("defaults.serving.fsGroup", "LLMPACK_FS_GROUP", "fs_group"),
    ("inferencePool.eppImage", "LLMPACK_EPP_IMAGE", "epp_image"),
    ("routing.baseDomain", "LLMPACK_BASE_DOMAIN", "base_domain"),
    ("routing.externalGateway.name", "LLMPACK_EXTERNAL_GATEWAY_NAME", "external_gateway_name"),
    ("routing.externalGateway.namespace", "LLMPACK_EXTERNAL_GATEWAY_NAMESPACE", "external_gateway_namespace"),
    ("routing.internalGateway.name", "LLMPACK_INTERNAL_GATEWAY_NAME", "internal_gateway_name"),
    ("routing.internalGateway.namespace", "LLMPACK_INTERNAL_GATEWAY_NAMESPACE", "internal_gateway_namespace"),
    ("routing.monitoringNamespace", "LLMPACK_MONITORING_NAMESPACE", "monitoring_namespace"),
    ("routing.manageListeners", "LLMPACK_MANAGE_LISTENERS", "manage_listeners"),
    ("routing.tls.secretName", "LLMPACK_TLS_SECRET_NAME", "tls_secret_name"),
    ("routing.tls.secretNamespace", "LLMPACK_TLS_SECRET_NAMESPACE", "tls_secret_namespace"),
    ("auth.oidc.issuer", "LLMPACK_OIDC_ISSUER", "oidc_issuer"),
    ("auth.oidc.jwksUri", "LLMPACK_OIDC_JWKS_URI", "oidc_jwks_uri"),
    ("auth.oidc.groupsClaim", "LLMPACK_OIDC_GROUPS_CLAIM", "oidc_groups_claim"),
    ("auth.oidc.usernameClaim", "LLMPACK_OIDC_USERNAME_CLAIM", "oidc_username_claim"),
    ("auth.oidc.audience", "LLMPACK_OIDC_AUDIENCE", "oidc_audience"),
    ("keyManager.serviceAccount", "LLMPACK_KEY_MANAGER_SERVICE_ACCOUNT", "key_manager_service_account"),
    ("metrics.port", "LLMPACK_METRICS_PORT", "metrics_port"),
    ("crds.manage", "LLMPACK_MANAGE_CRDS", "manage_crds"),
)


# Our values key -> the Serving Pack's spelling of the same setting (the chart's llmpack.settings agrees).
PACK_SPELLINGS: dict[str, str] = {
    "routing.baseDomain": "platform.baseDomain",
    "routing.externalGateway.name": "platform.gateway.external.name",
    "routing.externalGateway.namespace": "platform.gateway.external.namespace",
    "routing.internalGateway.name": "platform.gateway.internal.name",
    "routing.internalGateway.namespace": "platform.gateway.internal.namespace",
    "routing.manageListeners": "platform.gateway.manageSharedListeners",
    "routing.tls.secretName": "platform.tls.secretName",
    "auth.oidc.issuer": "auth.oidc.issuerURL",
    "inferencePool.eppImage": "defaults.epp.image",
}
PACK_IMAGES = "ghcr.io/nebari-dev/llm-serving-pack/"  # the pack's own programs: accepted in values, never run


def dig(values: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted Helm key (`auth.oidc.issuer`), None when any part is missing."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _is_set(value: Any) -> bool:
    return value is not None and value != ""


def _image(value: Any) -> Any:
    """An image as a string, or the pack's {repository, tag}; one of the pack's own images counts as unset."""
    if isinstance(value, Mapping):
        repository = str(value.get("repository") or "")
        value = f"{repository}:{value.get('tag') or __version__}" if repository else None
    return None if isinstance(value, str) and value.startswith(PACK_IMAGES) else value


def _from_values(values: Mapping[str, Any], dotted: str) -> tuple[Any, str]:
    """(value, the key it came from) by the one rule; (None, dotted) when neither spelling is set."""
    for key in (dotted, PACK_SPELLINGS.get(dotted)):
        found = dig(values, key) if key else None
        if dotted == "modelDownloader.image":
            found = _image(found)
        if _is_set(found):
            return found, str(key)
    return None, dotted


def _from_env(field: str, text: str) -> Any:
    if field == "watch_namespaces":
        return tuple(ns.strip() for ns in text.split(",") if ns.strip())
    return text


def load_config(values_file: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    values = read_values(values_file)
    chosen: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for dotted, var, field in SETTINGS:
        found, key = _from_values(values, dotted)
        if found is not None:
            chosen[field] = tuple(found) if isinstance(found, list) else found
            origin[field] = f"{values_file}: {key}"
        if var in env:
            chosen[field] = _from_env(field, env[var])
            origin[field] = f"environment variable {var}"
    try:
        return Config(**chosen)
    except ValidationError as exc:
        raise first_error(exc, origin) from None


def read_values(values_file: Path | None) -> Mapping[str, Any]:
    if values_file is None:
        return {}
    try:
        loaded = yaml.safe_load(values_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{values_file}: cannot read values: {exc}") from None
    if not isinstance(loaded, Mapping | None):
        raise ConfigError(f"{values_file}: values must be a mapping of keys")
    return loaded or {}


def first_error(exc: ValidationError, origin: Mapping[str, str]) -> ConfigError:
    """The first problem, named by where the setting came from (file and key, or variable)."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "?"
    return ConfigError(f"{origin.get(field, field)}: {error['msg']}")
