"""The kinds of model a key can be for, as a table: where to find them and how to read who may use them.

Every kind shares the key objects' names (`<name>-api-keys`, `<name>-api-key-metadata`) and the access
rule (`spec.access.public`, or `spec.access.groups` ∩ the caller's groups). PassthroughModel is one more
entry: its group/version/plural, what it serves (`spec.provider.hostname`) and `passthrough=True`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightkube.core.resource import NamespacedResource
from lightkube.generic_resource import create_namespaced_resource

from llmpack.api import GROUP, KIND, PLURAL, VERSION
from llmpack.api.passthrough import PASSTHROUGH_KIND, PASSTHROUGH_PLURAL


def _spec(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("spec") or {}


def access_of(body: dict[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """(public, groups) from spec.access; no access block means nobody (the operator's policy denies all)."""
    access = _spec(body).get("access") or {}
    groups = access.get("groups") or []
    return bool(access.get("public")), tuple(sorted({g for g in groups if isinstance(g, str)}))


def _llmmodel_served(body: dict[str, Any]) -> str:
    return str((_spec(body).get("model") or {}).get("name") or "")


@dataclass(frozen=True)
class ModelKind:
    kind: str
    group: str
    version: str
    plural: str
    served_name: Callable[[dict[str, Any]], str]  # what clients put in "model": ...
    passthrough: bool = False
    provider: Callable[[dict[str, Any]], str] = lambda body: ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def resource(self) -> type[NamespacedResource]:
        return create_namespaced_resource(self.group, self.version, self.kind, self.plural)


def _provider(body: dict[str, Any]) -> str:
    return str((_spec(body).get("provider") or {}).get("hostname") or "")


LLMMODEL = ModelKind(KIND, GROUP, VERSION, PLURAL, served_name=_llmmodel_served)
# As the Serving Pack's key manager lists it: its "model name" is the provider's hostname.
PASSTHROUGHMODEL = ModelKind(PASSTHROUGH_KIND, GROUP, VERSION, PASSTHROUGH_PLURAL, served_name=_provider,
                             passthrough=True, provider=_provider)
KINDS: tuple[ModelKind, ...] = (LLMMODEL, PASSTHROUGHMODEL)
