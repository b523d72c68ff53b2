"""Keep the llm-https listeners in the configured Gateways (opt-in). One pass at start, then one a minute:
a Gateway created later, or a listener someone removed, is put back; a Gateway that already holds them
costs one read and no write."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError

from llmpack.assess.diff import holds
from llmpack.config import Config
from llmpack.operator.errors import Failure, classify
from llmpack.operator.kube import GatewayResource
from llmpack.render.listeners import FIELD_MANAGER, gateway_patches

log = logging.getLogger("llmpack.listeners")
RECHECK = 60.0


async def ensure(client: AsyncClient, patch: dict[str, Any]) -> str | None:
    """Merge our listeners into one Gateway; returns what stops it, or None when they are in place."""
    meta = patch["metadata"]
    where = f"Gateway {meta['namespace']}/{meta['name']}"
    try:
        current = await client.get(GatewayResource, meta["name"], namespace=meta["namespace"])
    except ApiError as exc:
        if classify(exc) is Failure.MISSING:
            return f"{where} not found: create it (see docs/routing.md) or set routing.externalGateway/internalGateway"
        return f"{where} cannot be read: {exc.status.message}"
    by_name = {item.get("name"): item for item in (current.spec or {}).get("listeners", [])}
    if all(holds(by_name.get(want["name"]), want) for want in patch["spec"]["listeners"]):
        return None
    try:
        await client.apply(codecs.from_dict(patch), field_manager=FIELD_MANAGER, force=True)
    except ApiError as exc:
        return f"{where} refused the llm-https listeners: {exc.status.message}"
    log.info("%s: llm-https listeners merged", where)
    return None


async def keep(client: AsyncClient, config: Config) -> None:
    try:
        patches = gateway_patches(config)
    except ValueError as exc:
        log.error("listeners are not managed: %s", exc)
        return
    reported: dict[str, str | None] = {}
    while True:
        for patch in patches:
            name = patch["metadata"]["name"]
            try:
                problem = await ensure(client, patch)
            except Exception as exc:  # the API server restarting: try again next round
                problem = f"Gateway {name}: {exc}"
            if problem != reported.get(name):  # say it once, not every minute
                if problem:
                    log.warning("%s", problem)
                reported[name] = problem
        await asyncio.sleep(RECHECK)
