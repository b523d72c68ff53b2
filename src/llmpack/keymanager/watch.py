"""List, then watch from the list's resourceVersion; on any error, list again. The caller's `reset`
receives every object of a (re)list, `event` each change after it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from lightkube import ALL_NS, AsyncClient
from lightkube.core.exceptions import ApiError

log = logging.getLogger("llmpack.keymanager.watch")
RETRY = 2.0
MISSING_RETRY = 30.0  # a kind whose CRD is not installed: look again now and then


async def keep_watching(client: AsyncClient, resource: Any, *, namespace: str | None,
                        labels: dict[str, Any] | None, reset: Callable[[Sequence[Any]], None],
                        event: Callable[[str, Any], None], failed: Callable[[bool], None] = lambda _: None,
                        fields: dict[str, Any] | None = None) -> None:
    """Runs until cancelled. `failed(True)` while the list fails (e.g. forbidden): the caller then knows its
    view is not the cluster's; `failed(False)` once a list succeeded."""
    where = namespace or ALL_NS
    while True:
        try:
            listing = client.list(resource, namespace=where, labels=labels, fields=fields)
            items = [obj async for obj in listing]
            version = listing.resourceVersion
            reset(items)
            failed(False)
            async for type_, obj in client.watch(resource, namespace=where, labels=labels, fields=fields,
                                                 resource_version=version):
                event(type_, obj)
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            if exc.status.code == 404:  # the CRD is not installed: nothing of this kind exists
                reset([])
                failed(False)
                await asyncio.sleep(MISSING_RETRY)
                continue
            if exc.status.code != 410:
                log.warning("watching %s in %s: %s", resource.__name__, where, exc.status.message)
                failed(True)
            await asyncio.sleep(RETRY if exc.status.code != 410 else 0)
        except (httpx.HTTPError, OSError) as exc:
            log.warning("watching %s in %s: %s", resource.__name__, where, exc)
            failed(True)
            await asyncio.sleep(RETRY)


def namespaces_to_watch(namespaces: Sequence[str]) -> list[str | None]:
    return list(namespaces) or [None]
