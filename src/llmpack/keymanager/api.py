"""The JSON API, compatible with the Serving Pack's key manager (same paths, bodies and answers), plus
namespaces, expiry, an admin group, a per-user key limit and revoke-all.

Every /api endpoint takes an Identity (auth.py); none of them reads a credential itself.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from llmpack.keymanager import actions, errors
from llmpack.keymanager.auth import Identity
from llmpack.keymanager.catalog import ModelRef
from llmpack.keymanager.keys import DESCRIPTION_MAX, valid_client_id
from llmpack.keymanager.service import Service

NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MODEL_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
ADDRESSING = ("a key is addressed as /api/keys/<namespace>/<model>/<clientId>, and client ids hold only letters, "
              "digits, '-', '_' and single dots")

router = APIRouter()


async def service_of(request: Request) -> Service:
    """Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request."""
    return request.app.state.service  # type: ignore[no-any-return]


async def identify(request: Request) -> Identity:
    return await (await service_of(request)).authenticator(request)


Caller = Annotated[Identity, Depends(identify)]
Svc = Annotated[Service, Depends(service_of)]


# -- answers, for the OpenAPI document --------------------------------------------------------------------

class Me(BaseModel):
    username: str
    name: str
    email: str
    groups: list[str]
    admin: bool


class ModelInfo(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    Name: str
    Namespace: str
    ModelName: str = Field(description="what clients send as \"model\"")
    Public: bool
    Groups: list[str]
    Passthrough: bool
    Provider: str
    Kind: str
    Phase: str
    Endpoints: dict[str, str]


class ModelList(BaseModel):
    models: list[ModelInfo]


class KeyInfo(BaseModel):
    clientId: str
    creator: str
    description: str
    createdAt: str
    modelName: str
    namespace: str
    expiresAt: str | None


class KeyList(BaseModel):
    keys: list[KeyInfo]


class CreatedKey(BaseModel):
    clientId: str
    apiKey: str = Field(description="shown once, never again")
    modelName: str
    namespace: str
    expiresAt: str | None


class Revoked(BaseModel):
    revoked: list[str]


class Detail(BaseModel):
    detail: str


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    model_name: str = Field(alias="modelName", min_length=1, max_length=253, pattern=MODEL_PATTERN,
                            description="the model's name (metadata.name), as GET /api/models gives it in Name")
    namespace: str | None = Field(None, min_length=1, max_length=63, pattern=NAMESPACE_PATTERN,
                                  description="needed only when models of that name exist in several namespaces")
    description: str = Field("", max_length=DESCRIPTION_MAX)
    expires_in_days: float | None = Field(
        None, alias="expiresInDays", gt=0, description="fractions allowed; default keyManager.keys.defaultExpiryDays")


REFUSALS: dict[int | str, dict[str, Any]] = {code: {"model": Detail} for code in (400, 401, 403, 404, 409, 503)}

# -- endpoints ----------------------------------------------------------------------------------------------


@router.get("/api/me", response_model=Me, responses=REFUSALS)
async def me(caller: Caller) -> Any:
    return caller.wire()


class Answers:
    """GET /api/models for 20 callers at once: the same groups get the same bytes until the catalog changes."""

    def __init__(self, size: int = 256) -> None:
        self.size, self.cache = size, OrderedDict[tuple[int, frozenset[str]], bytes]()

    def get(self, service: Service, groups: frozenset[str]) -> bytes:
        key = (service.catalog.version, groups)
        body = self.cache.get(key)
        if body is None:
            models = [m.wire() for m in service.catalog.visible(groups)]
            body = bytes(JSONResponse({"models": models}).body)
            self.cache[key] = body
            while len(self.cache) > self.size:
                self.cache.popitem(last=False)
        return body


@router.get("/api/models", response_model=ModelList, responses=REFUSALS)
async def models(request: Request, caller: Caller, service: Svc) -> Any:
    """The models the caller may use: public ones, and those open to one of the caller's groups."""
    actions.synced(service)
    answers: Answers = request.app.state.answers  # one per app: its catalog's versions are its own
    return Response(answers.get(service, frozenset(caller.groups)), media_type="application/json")


@router.get("/api/keys", response_model=KeyList, responses=REFUSALS)
async def keys(caller: Caller, service: Svc,
               all_: Annotated[bool, Query(alias="all", description="every user's keys (admins only)")] = False) -> Any:
    actions.synced(service)
    if all_ and not caller.admin:
        raise errors.forbidden("only members of an admin group (keyManager.adminGroups) may list every key")
    records = service.holdings.records() if all_ else service.holdings.records_of(caller.username)
    return JSONResponse({"keys": [r.wire() for r in records]})


@router.post("/api/keys", status_code=201, response_model=CreatedKey, responses=REFUSALS)
async def create_key(body: CreateKey, caller: Caller, service: Svc) -> Any:
    """A new key for a model the caller may use. The key is in the answer, and nowhere else, ever again."""
    issued = await actions.create_key(service, caller, model_name=body.model_name, namespace=body.namespace,
                                      description=body.description, expires_in_days=body.expires_in_days)
    return JSONResponse({"clientId": issued.record.client_id, "apiKey": issued.api_key,
                         "modelName": issued.model.name, "namespace": issued.model.namespace,
                         "expiresAt": issued.record.wire()["expiresAt"]}, status_code=201)


def _ref(namespace: str, model: str) -> ModelRef:
    if not re.match(NAMESPACE_PATTERN, namespace) or not re.match(MODEL_PATTERN, model):
        raise errors.bad_request(ADDRESSING)
    return namespace, model


@router.delete("/api/keys/{namespace}/{model}/{client_id}", status_code=204, responses=REFUSALS)
async def revoke_key(namespace: str, model: str, client_id: str, caller: Caller, service: Svc) -> Response:
    """Revoke one key: its creator, or an admin. The gateway stops accepting it within seconds (docs)."""
    ref = _ref(namespace, model)
    if not valid_client_id(client_id):
        raise errors.bad_request(ADDRESSING)
    await actions.revoke_key(service, caller, ref, client_id)
    return Response(status_code=204)


@router.delete("/api/keys/{namespace}/{model}", response_model=Revoked, responses=REFUSALS)
async def revoke_all(namespace: str, model: str, caller: Caller, service: Svc) -> Any:
    """Revoke every key of a model: the caller's own, or, for an admin, everyone's. For an admin and a deleted
    model this also deletes its key objects at once instead of after the grace period."""
    ref = _ref(namespace, model)
    actions.synced(service)
    holding = service.holdings.get(ref)
    if holding is None:
        raise errors.not_found(f"model {namespace}/{model} has no keys")
    targets = {cid for cid, r in holding.records.items() if caller.admin or r.creator == caller.username}
    removed = await service.store.remove(ref, targets) if targets else set()
    for client_id in sorted(removed):
        service.auditor.record("revoked", actor=caller.username, ref=ref, client_id=client_id,
                               model=service.catalog.of(ref), message=f"{caller.username} revoked API key "
                               f"{client_id} (revoke-all)")
    if caller.admin and not service.catalog.exists(ref) and service.models_known() and await service.store.retire(ref):
        service.auditor.record("retired", actor=caller.username, ref=ref, client_id=None, model=None,
                               message=f"{caller.username} retired the key objects of deleted model {model}")
    return JSONResponse({"revoked": sorted(removed)})


@router.api_route("/api/keys/{rest:path}", methods=["DELETE"], include_in_schema=False)
async def malformed_key_path(rest: str, caller: Caller) -> Response:
    raise errors.bad_request(ADDRESSING)
