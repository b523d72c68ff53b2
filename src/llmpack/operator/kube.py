"""The few API calls the operator makes, behind small verbs (lightkube, async)."""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import weakref
from typing import TYPE_CHECKING, Any

import httpx2
import msgspec
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericNamespacedResource,
    create_api_info,
    create_namespaced_resource,
)
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from llmpack import kinds
from llmpack.api import API_VERSION, GROUP, KIND, PLURAL, VERSION
from llmpack.config import FIELD_MANAGER
from llmpack.operator.errors import Failure, classify

if TYPE_CHECKING:  # the CLI imports this module: aiohttp only where the operator runs
    from llmpack.operator.apiserver import ApiServer

log = logging.getLogger("llmpack.operator")


def _resource(kind: kinds.Kind, version: str | None = None) -> Any:
    return create_namespaced_resource(kind.group, version or kind.version, kind.kind, kind.plural)


LLMModelResource = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)
PassthroughModelResource = create_namespaced_resource(GROUP, VERSION, "PassthroughModel", "passthroughmodels")
# Registered so that codecs.from_dict knows the third-party kinds we apply.
InferencePoolResource = _resource(kinds.INFERENCE_POOL)
AIGatewayRouteResource = _resource(kinds.AI_GATEWAY_ROUTE)
AIGatewayRouteResources = {v: _resource(kinds.AI_GATEWAY_ROUTE, v) for v in kinds.AI_GATEWAY_ROUTE.versions}
SecurityPolicyResource = _resource(kinds.SECURITY_POLICY)
PodMonitorResource = _resource(kinds.POD_MONITOR)
GatewayResource = _resource(kinds.GATEWAY)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Plurals of the kinds we apply, for requests that send and receive plain dicts.
_PLURALS = {kind.kind: kind.plural for kind in (*kinds.CHILDREN, kinds.GATEWAY)} | {
    "Secret": "secrets", "Event": "events", "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
    KIND: PLURAL, "PassthroughModel": "passthroughmodels", "CustomResourceDefinition": "customresourcedefinitions"}


@functools.cache
def _plain(api_version: str, kind: str, namespaced: bool) -> Any:
    """A lightkube resource whose objects are plain dicts, not registered (so `codecs` keeps its typed models):
    an apply then encodes our dict once and decodes the answer once, with no typed model in between."""
    group, _, version = api_version.rpartition("/")
    base = GenericNamespacedResource if namespaced else GenericGlobalResource
    return type(kind, (base,), {"_api_info": create_api_info(group, version, kind, _PLURALS[kind])})


def _path(api_version: str, kind: str, namespace: str | None, name: str = "", subresource: str = "") -> str:
    """The object's URL path: /api/v1/... for the core group, /apis/<group>/<version>/... for the others."""
    root = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    where = f"/namespaces/{namespace}" if namespace else ""
    return "/".join(p for p in (f"{root}{where}/{_PLURALS[kind]}", name, subresource) if p)


_APPLY = {"Content-Type": "application/apply-patch+yaml"}  # JSON is YAML
_JSON = {"Content-Type": "application/json"}
_encode, _decode = msgspec.json.encode, msgspec.json.decode
_APPLY_PARAMS = {"fieldManager": FIELD_MANAGER, "force": "true"}


# httpx keeps 20 connections alive (lightkube sets no limits): more writes at once (8 workers, each applying
# a model's objects together) would each open, and TLS-handshake, a connection to close right after.
KEPT_ALIVE = 20
_limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_servers: weakref.WeakKeyDictionary[AsyncClient, ApiServer] = weakref.WeakKeyDictionary()


def use(client: AsyncClient, server: ApiServer) -> None:
    """Send `client`'s writes through `server` (aiohttp: a quarter of httpx2's CPU a request, apiserver.py).
    The operator does; a client without one (tests, the CLI) writes through lightkube's own connection."""
    _servers[client] = server


def _in_flight() -> asyncio.Semaphore:
    """One limit per event loop (a semaphore belongs to the loop it first waits in)."""
    loop = asyncio.get_running_loop()
    if (limit := _limits.get(loop)) is None:
        limit = _limits[loop] = asyncio.Semaphore(KEPT_ALIVE)
    return limit


async def _send(client: AsyncClient, method: str, path: str, body: Any, headers: dict[str, str],
                params: dict[str, str] | None = None) -> dict[str, Any]:
    """One request with our bytes both ways (`body` None: none sent): the writes of every pass (applies,
    status, Events) and its lists of Events skip building a lightkube request and decoding its answer into
    typed models. Errors are lightkube's ApiError, as elsewhere."""
    content = None if body is None else _encode(body)
    if (server := _servers.get(client)) is not None:
        answer = await server.request(method, path, params=params, body=content, headers=headers)
        if answer.status >= 400:
            raise answer.error(method, server.base + path)
        content = answer.body
    else:
        http: httpx2.AsyncClient = client._client._client
        async with _in_flight():
            response = await http.request(method, path, params=params, content=content, headers=headers)
        if response.status_code >= 400:
            raise ApiError(request=response.request, response=response)
        content = response.content
    decoded: dict[str, Any] = _decode(content)
    return decoded


async def apply(client: AsyncClient, obj: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply with our fixed field manager; force, because these fields are ours. Returns the
    object as the server now holds it."""
    meta = obj["metadata"]
    if obj["kind"] not in _PLURALS:
        applied = await client.apply(codecs.from_dict(obj), field_manager=FIELD_MANAGER, force=True)
        return dict(applied.to_dict())  # type: ignore[no-untyped-call]
    return await _send(client, "PATCH", _path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]),
                       obj, _APPLY, _APPLY_PARAMS)


async def read(client: AsyncClient, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The object named like `obj` as the server holds it (managedFields and all), or None when it does not
    exist: for children a watch cannot show us (another operator's labels)."""
    meta = obj["metadata"]
    resource = _plain(obj["apiVersion"], obj["kind"], "namespace" in meta)
    try:
        return dict(await client.get(resource, meta["name"], namespace=meta.get("namespace")))
    except ApiError as exc:
        if classify(exc) is Failure.MISSING:
            return None
        raise


async def json_patch(client: AsyncClient, obj: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """An RFC 6902 patch of a child (or of an LLMModel); its `test` operations make it a precondition."""
    meta = obj["metadata"]
    resource = _plain(obj["apiVersion"], obj["kind"], "namespace" in meta)
    return dict(await client.patch(resource, meta["name"], patch, namespace=meta.get("namespace"),
                                   patch_type=PatchType.JSON, field_manager=FIELD_MANAGER))


async def create(client: AsyncClient, obj: dict[str, Any]) -> bool:
    """Create unless it exists (False then): for objects whose content belongs to someone else."""
    meta = obj["metadata"]
    try:
        if obj["kind"] in _PLURALS:
            await _send(client, "POST", _path(obj["apiVersion"], obj["kind"], meta.get("namespace")), obj, _JSON,
                        {"fieldManager": FIELD_MANAGER})
        else:
            await client.create(codecs.from_dict(obj))
    except ApiError as exc:
        if classify(exc) is Failure.CONFLICT:
            return False
        raise
    return True


async def delete(client: AsyncClient, obj: dict[str, Any]) -> None:
    """Delete an object we own, by its apiVersion, kind and name; gone already is fine."""
    resource: Any = type(codecs.from_dict(obj))
    meta = obj["metadata"]
    try:
        await client.delete(resource, meta["name"], namespace=meta.get("namespace"))
    except ApiError as exc:
        if classify(exc) is not Failure.MISSING:
            raise


async def apply_status(client: AsyncClient, namespace: str, name: str, status: dict[str, Any], *,
                       kind: str = KIND) -> None:
    """Of an LLMModel, or of a PassthroughModel (`kind`)."""
    body = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "status": status}
    await _send(client, "PATCH", _path(API_VERSION, kind, namespace, name, "status"), body, _APPLY, _APPLY_PARAMS)


async def secret_problem(client: AsyncClient, namespace: str, name: str, key: str, *,
                         what: str = "the Hugging Face token", sample: str = "hf_...") -> str | None:
    """Why the Secret cannot give `what` (the downloader's token by default) under `key`, or None when it can.
    Its value is never returned or logged."""
    try:
        secret = await client.get(Secret, name, namespace=namespace)
    except ApiError as exc:
        if classify(exc) is Failure.MISSING:
            return (f"Secret {name} not found in namespace {namespace}: create it with `kubectl create secret "
                    f"generic {name} -n {namespace} --from-literal={key}={sample}`")
        if classify(exc) is Failure.REFUSED:
            return f"the operator may not read Secret {namespace}/{name}: check its RBAC"
        raise
    if key not in (secret.data or {}) and key not in (secret.stringData or {}):
        return f"Secret {namespace}/{name} has no key {key}: add {what} under that key"
    return None


async def warnings(client: AsyncClient, namespace: str, uid: str) -> list[dict[str, Any]]:
    """The Warning Events about one object (by uid), as plain dicts."""
    answer = await _send(client, "GET", _path("v1", "Event", namespace), None, {},
                         {"fieldSelector": f"involvedObject.uid={uid},type=Warning"})
    return list(answer.get("items") or ())


async def record_event(client: AsyncClient, model: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """As plain dicts both ways: four Events a model, and a typed Event costs more to build and decode than
    the request itself."""
    meta = model["metadata"]
    stamp = now()
    await _send(client, "POST", _path("v1", "Event", meta["namespace"]), {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {k: v for k, v in (
            ("apiVersion", API_VERSION), ("kind", model.get("kind") or KIND), ("name", meta["name"]),
            ("namespace", meta["namespace"]), ("uid", meta.get("uid")),
            ("resourceVersion", meta.get("resourceVersion"))) if v is not None},
        "type": type_, "reason": reason, "message": message, "count": 1,
        "firstTimestamp": stamp, "lastTimestamp": stamp,
        "source": {"component": "llmpack"}, "reportingComponent": "llmpack",
    }, _JSON)


# Image volumes are on by default from Kubernetes 1.35 (beta) and GA in 1.36; earlier they need a feature gate.
IMAGE_VOLUMES_SINCE = (1, 35)


def serves_image_volumes(version: dict[str, Any]) -> bool:
    """From the API server's /version: major and minor, which some providers suffix ("36+", EKS and GKE)."""
    try:
        found = tuple(int("".join(ch for ch in str(version[part]) if ch.isdigit())) for part in ("major", "minor"))
    except (KeyError, ValueError):
        return False
    return found >= IMAGE_VOLUMES_SINCE


async def image_volumes(server: ApiServer) -> bool:
    """Whether OCI models are mounted as image volumes by default; when the version cannot be read, the copy
    path, which works everywhere."""
    import aiohttp

    try:
        answer = await server.request("GET", "/version")
        if answer.status >= 400:
            raise ValueError(f"{answer.status} {answer.reason}")
        return serves_image_volumes(_decode(answer.body))
    except (aiohttp.ClientError, TimeoutError, ValueError, msgspec.DecodeError) as exc:
        log.warning("cannot read the API server's version (%s): OCI models are copied, not mounted", exc)
        return False
