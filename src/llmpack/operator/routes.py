"""Routing and auth for one model, once a replica serves: the InferencePool and its picker, then per side
(external, internal) the SecurityPolicy before the AIGatewayRoute, so a route is never open without
its policy. Each part reports a condition; a missing third-party CRD is reported, never fatal.

API keys: the operator may `get` and `create` Secrets but not list or watch them (it must not see every
Secret of the cluster). So it creates `<m>-api-keys` empty, reads its data keys (the client ids) again at
most every KEYS_REFRESH seconds, and the runner wakes models with external routes that often.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from llmpack.api import LLMModel
from llmpack.config import Config
from llmpack.operator import kube
from llmpack.operator.guards import Problem
from llmpack.operator.status import Report, Routes, refusal
from llmpack.operator.store import Key, Store
from llmpack.render import auth, routing
from llmpack.render.auth import Side
from llmpack.render.keymanager_rbac import access_for, key_objects

KEYS_REFRESH = 15.0
INSTALL = {
    routing.POOL_CRD: "the Gateway API Inference Extension CRDs (v1.x)",
    auth.POLICY_CRD: "Envoy Gateway (v1.6 or later)",
    auth.ROUTE_CRD: "Envoy AI Gateway (v0.5 or later)",
}
Apply = Callable[[Key, list[dict[str, Any]]], Awaitable[Problem | None]]


class Router:
    def __init__(self, client: AsyncClient, store: Store, config: Config, apply: Apply,
                 wake: Callable[[Key], None]) -> None:
        self.client, self.store, self.config, self._apply_all, self._wake = client, store, config, apply, wake
        self._keys_read: dict[Key, float] = {}

    async def _apply(self, key: Key, objects: list[dict[str, Any]]) -> Problem | None:
        """Routing is never worth failing the whole reconcile: any refusal becomes the condition's message
        (e.g. a RoleBinding that names a Role the server refused to create comes back 404)."""
        try:
            return await self._apply_all(key, objects)
        except ApiError as exc:
            code = exc.status.code or 500
            if code in (401, 409, 429) or code >= 500 or "being terminated" in (exc.status.message or ""):
                raise  # the API server is unwell or the namespace is going: not our spec; retry or skip
            return ("ApplyFailed", f"{exc.status.message}")

    async def route(self, key: Key, model: LLMModel, ready: int) -> Routes:
        pool = await self._pool(key, model, ready)
        external = await self._side(key, model, ready, "external")
        internal = await self._side(key, model, ready, "internal")
        reports: tuple[tuple[Side, Report], ...] = (("external", external), ("internal", internal))
        endpoints: dict[str, str] = {side: f"https://{auth.hostname(self.config, side)}"
                                     for side, report in reports if report[0] and self.config.base_domain}
        return Routes(pool, external, internal, endpoints)

    async def _pool(self, key: Key, model: LLMModel, ready: int) -> Report:
        if routing.POOL_CRD not in self.store.crds:
            return (False, "CRDMissing", f"{_missing([routing.POOL_CRD])}; the model still serves through its "
                    "Service inside the cluster")
        if ready == 0:
            return (False, "WaitingForReplica", "the InferencePool is created once a replica is Ready")
        refused = await self._apply(key, routing.routing(model, self.config))
        if refused is not None:
            return (False, "ApplyFailed", refused[1])
        return (True, "Applied", f"InferencePool {model.name} and its endpoint picker {routing.epp_name(model)} "
                "are in place")

    async def _side(self, key: Key, model: LLMModel, ready: int, side: Side) -> Report:
        if not auth.served(model, self.config, side):
            await self._remove(key, model, side)
            if not auth.enabled(model, side):
                return (False, "EndpointDisabled", f"endpoints.{side}.enabled is false")
            return (False, "NotConfigured", "the operator has no OIDC issuer (Helm value auth.oidc.issuer, "
                    "LLMPACK_OIDC_ISSUER): the internal route is not applied without its policy")
        if ready == 0:
            return (False, "WaitingForReplica", f"the {side} route is created once a replica is Ready")
        # Keys serve only a policy: without Envoy Gateway's CRD neither they nor the policy are created.
        if auth.POLICY_CRD in self.store.crds:
            client_ids: tuple[str, ...] = ()
            if side == "external":
                try:
                    client_ids = await self._client_ids(key, model)
                except ApiError as exc:
                    return (False, "ApplyFailed", f"Secret {auth.api_keys_secret(model.name)}: {exc.status.message}")
                if refused := await self._apply(key, key_objects(model, self.config)[1:]):  # the Secret: above
                    return (False, "ApplyFailed", refused[1])
                metadata = self.store.child(key, "ConfigMap", auth.key_metadata_name(model.name))
                if refused := await self._apply(key, access_for(model, self.config, metadata)):
                    return (False, "ApplyFailed", refused[1])
            policy = auth.policy(model, self.config, side, self._credential_secrets(key[0]), client_ids)
            if refused := await self._apply(key, [policy]):
                return (False, "ApplyFailed", refused[1])
            if rejected := self._rejected(key, "SecurityPolicy", auth.policy_name(model, side)):
                return rejected
        missing = [crd for crd in (routing.POOL_CRD, auth.POLICY_CRD, auth.ROUTE_CRD) if crd not in self.store.crds]
        if missing:
            return (False, "CRDMissing", f"{_missing(missing)}; the model still serves inside the cluster")
        if refused := await self._apply(key, [auth.route(model, self.config, side)]):
            return (False, "ApplyFailed", refused[1])
        if rejected := self._rejected(key, "AIGatewayRoute", auth.route_name(model, side)):
            return rejected
        where = auth.hostname(self.config, side) or "the Gateway's listener (routing.baseDomain is not set)"
        return (True, "Applied", f"{where} routes requests for {model.spec.model.name} here "
                f"(route {auth.route_name(model, side)}, policy {auth.policy_name(model, side)})")

    def _rejected(self, key: Key, kind: str, name: str) -> Report | None:
        """Applied is not enforced: when the gateway's controller refused the object, say so in its words."""
        why = refusal(self.store.child(key, kind, name))
        return (False, "NotAccepted", f"the gateway did not accept {kind} {name}: {why}") if why else None

    async def _remove(self, key: Key, model: LLMModel, side: Side) -> None:
        """A disabled side leaves no route and no policy behind (route first: never open without policy)."""
        for kind, name in (("AIGatewayRoute", auth.route_name(model, side)),
                           ("SecurityPolicy", auth.policy_name(model, side))):
            if (observed := self.store.child(key, kind, name)) is not None:
                await kube.delete(self.client, observed)
                self.store.drop_child(kind, observed)  # as with applies: do not wait for the watch to say so

    async def _client_ids(self, key: Key, model: LLMModel) -> tuple[str, ...]:
        """The data keys of `<m>-api-keys`, creating it empty when it is missing (never writing its data)."""
        known = self.store.api_keys.get(key)
        if known is not None and time.monotonic() - self._keys_read.get(key, float("-inf")) < KEYS_REFRESH:
            return known
        name = auth.api_keys_secret(model.name)
        try:
            secret = await self.client.get(Secret, name, namespace=key[0])
            ids = tuple(sorted((secret.data or {}).keys()))
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            await kube.create(self.client, key_objects(model, self.config)[0])
            ids = ()
        self._keys_read[key] = time.monotonic()
        self.store.api_keys[key] = ids
        if known is None:  # a new Secret: every sibling's policy now accepts its keys
            for sibling in self.store.models:
                if sibling[0] == key[0] and sibling != key:
                    self._wake(sibling)
        return ids

    def _credential_secrets(self, namespace: str) -> list[str]:
        return sorted(auth.api_keys_secret(name) for ns, name in self.store.api_keys if ns == namespace)

    def stale(self, key: Key) -> None:
        """Read this model's keys again at its next reconcile."""
        self._keys_read.pop(key, None)

    def forget(self, key: Key) -> None:
        """The model is gone (its Secret goes with it): siblings stop naming that Secret."""
        self._keys_read.pop(key, None)
        if self.store.api_keys.pop(key, None) is not None:
            for sibling in self.store.models:
                if sibling[0] == key[0]:
                    self._wake(sibling)


def _missing(crds: list[str]) -> str:
    names = ", ".join(crds)
    how = "; ".join(f"{crd} comes with {INSTALL[crd]}" for crd in crds)
    return f"CRD not installed: {names} ({how}; see docs/routing.md)"
