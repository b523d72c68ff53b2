"""What a signed-in caller can do, whichever door they came in by: the JSON API (api.py) or the web page
(pages.py). Each refusal is an errors.Problem whose line says what to do; the doors only shape the answer."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from llmpack.keymanager import errors
from llmpack.keymanager.auth import Identity
from llmpack.keymanager.catalog import ModelEntry, ModelRef, may_use
from llmpack.keymanager.keys import KeyRecord, new_api_key, now
from llmpack.keymanager.service import Service


@dataclass(frozen=True)
class Issued:
    record: KeyRecord
    api_key: str  # in this answer and nowhere else, ever again
    model: ModelEntry


def synced(service: Service) -> None:
    if not service.synced:
        raise errors.unavailable("the key manager is still reading the cluster's models and keys; try again in a "
                                 "few seconds")


def resolve(service: Service, caller: Identity, name: str, namespace: str | None) -> ModelEntry:
    where = f" in namespace {namespace}" if namespace else ""
    candidates = service.catalog.named(name, namespace)
    if not candidates:
        raise errors.not_found(f"no model named {name}{where}: GET /api/models lists the ones you may use")
    usable = [m for m in candidates if may_use(m, caller.groups)]
    if not usable:
        raise errors.forbidden(f"model {name}{where} is not open to any of your groups; its owner can add one to "
                               "spec.access.groups")
    spaces = sorted({m.namespace for m in usable})
    if len(spaces) > 1:
        raise errors.conflict(f"models named {name} exist in namespaces {', '.join(spaces)}: say which with "
                              "\"namespace\"")
    return usable[0]


def expiry(service: Service, days: float | None) -> datetime.datetime | None:
    s = service.settings
    chosen = days if days is not None else s.default_expiry_days
    if s.max_expiry_days and chosen > s.max_expiry_days:
        raise errors.bad_request(f"expiresInDays: at most {s.max_expiry_days:g} days here "
                                 "(keyManager.keys.maxExpiryDays)")
    return now() + datetime.timedelta(days=chosen) if chosen else None


async def create_key(service: Service, caller: Identity, *, model_name: str, namespace: str | None,
                     description: str, expires_in_days: float | None) -> Issued:
    """A new key for a model the caller may use."""
    synced(service)
    model = resolve(service, caller, model_name, namespace)
    expires_at = expiry(service, expires_in_days)
    created_at = now()

    def record_for(client_id: str) -> KeyRecord:
        return KeyRecord(client_id=client_id, creator=caller.username, description=description,
                         created_at=created_at, model_name=model.name, namespace=model.namespace,
                         expires_at=expires_at)

    async with service.user_lock(caller.username):  # the limit holds for one user's parallel requests too
        held, limit = service.holdings.count_of(caller.username), service.settings.max_keys_per_user
        if held >= limit:
            raise errors.conflict(f"you hold {held} keys, the most one user may (keyManager.maxKeysPerUser); "
                                  "revoke one first")
        api_key = new_api_key()
        record = await service.store.create(model.ref, caller.username, api_key, record_for)
    service.auditor.record("created", actor=caller.username, ref=model.ref, client_id=record.client_id, model=model,
                           message=f"{caller.username} created API key {record.client_id}"
                           + (f", expiring {record.wire()['expiresAt']}" if record.expires_at else ""))
    return Issued(record, api_key, model)


async def revoke_key(service: Service, caller: Identity, ref: ModelRef, client_id: str) -> None:
    """Revoke one key: its creator, or an admin (who may also revoke a key written by hand into the Secret)."""
    namespace, model = ref
    synced(service)
    holding = service.holdings.get(ref)
    record = holding.records.get(client_id) if holding else None
    if record is None:
        secret = await service.store.secret(ref) if caller.admin else None
        if secret is None or client_id not in (secret.data or {}):
            raise errors.not_found(f"no key {client_id} for model {namespace}/{model}: GET /api/keys lists yours")
    elif record.creator != caller.username and not caller.admin:
        raise errors.forbidden(f"key {client_id} belongs to another user: only its creator or an admin "
                               "(keyManager.adminGroups) may revoke it")
    if await service.store.remove(ref, {client_id}):
        service.auditor.record("revoked", actor=caller.username, ref=ref, client_id=client_id,
                               model=service.catalog.of(ref),
                               message=f"{caller.username} revoked API key {client_id}"
                               + (f" of {record.creator}" if record and record.creator != caller.username else ""))
