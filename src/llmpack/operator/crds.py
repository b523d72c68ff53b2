"""Our CRDs (llmmodels, passthroughmodels) made current at start, before any watch: Helm installs a chart's
`crds/` only when they are absent and never upgrades them, so without this a `helm upgrade` would leave the
previous release's schema (pruning the new fields), a release's new CRD uninstalled, and a Serving Pack CRD
in place of ours.

Each CRD is read by name; one that is exactly ours (assess/crds.py) is left alone, so a restart writes
nothing. One that is missing is created; one that differs is replaced whole (an update carrying its
resourceVersion), not server-side applied: apply keeps what another manager set and we leave out (on 1.36
`spec.versions` is atomic and taken whole, but another manager's `spec.conversion` webhook survives), while
a replacement leaves nothing of theirs by construction. The API server keeps every object across such an
update (it changes how objects are validated and pruned, not what is stored). With `crds.manage` off
(GitOps, where another tool owns CRDs), nothing is written: a CRD that is missing or not ours is reported in
one line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx2
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import GenericGlobalResource, create_api_info

from llmpack import __version__
from llmpack.api import crd, passthrough_crd
from llmpack.assess.crds import differences, established, replacement, summary, unserved_stored_versions
from llmpack.config import FIELD_MANAGER
from llmpack.operator import kube
from llmpack.operator.errors import Failure, classify

log = logging.getLogger("llmpack.operator")
ESTABLISHED_WITHIN = 30.0  # seconds a created or replaced CRD may take to be served
ATTEMPTS = 5  # reads and writes before giving up on a CRD that keeps changing under us (409) or a server away
APPLY_HINT = "kubectl apply --server-side --force-conflicts -f charts/llmpack/crds/ (or `llmpack crd`)"


class CRDResource(GenericGlobalResource):
    """CustomResourceDefinitions as plain dicts: compared key by key with ours, no typed model in between."""

    _api_info = create_api_info("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                                "customresourcedefinitions")


def ours() -> list[dict[str, Any]]:
    return [crd.crd(), passthrough_crd.crd()]


async def keep_current(client: AsyncClient, *, manage: bool) -> None:
    """Every CRD of ours current (or, without `manage`, checked); a CRD we may not or cannot write is logged
    and skipped: the watches retry until it is served."""
    for wanted in ours():
        try:
            if manage:
                await _make_current(client, wanted)
            else:
                _check(wanted, await _get(client, wanted["metadata"]["name"]))
        except ApiError as exc:
            name = wanted["metadata"]["name"]
            if exc.status.code == 403:
                log.warning("CRD %s: the operator may not %s it (%s): grant the chart's RBAC, or set "
                            "crds.manage=false and apply it yourself: %s", name, "update" if manage else "read",
                            exc.status.message, APPLY_HINT)
            else:  # e.g. 422: the API server refused the definition (a field that cannot change)
                log.warning("CRD %s not made current: %s; apply this release's CRDs yourself: %s", name,
                            exc.status.message, APPLY_HINT)
        except httpx2.HTTPError as exc:
            log.warning("CRD %s not made current: %s", wanted["metadata"]["name"], exc)


def _check(wanted: dict[str, Any], served: dict[str, Any] | None) -> None:
    name = wanted["metadata"]["name"]
    if served is None:
        log.warning("CRD %s is not installed and crds.manage is off: apply llmpack %s's CRDs: %s", name,
                    __version__, APPLY_HINT)
    elif found := differences(served, wanted):
        log.warning("CRD %s is not llmpack %s's and crds.manage is off (%s): apply this release's CRDs: %s",
                    name, __version__, summary(found), APPLY_HINT)


async def _make_current(client: AsyncClient, wanted: dict[str, Any]) -> None:
    name = wanted["metadata"]["name"]
    for attempt in range(1, ATTEMPTS + 1):
        served = await _get(client, name)
        try:
            if served is None:
                await client.create(CRDResource(**wanted), field_manager=FIELD_MANAGER)
                log.info("CRD %s installed (llmpack %s)", name, __version__)
            elif not (found := differences(served, wanted)):
                return
            elif stored := unserved_stored_versions(served, wanted):
                log.warning("CRD %s not replaced: objects are stored as %s, which llmpack %s does not serve; "
                            "migrate them first (docs/operations.md, upgrading llmpack)", name,
                            ", ".join(stored), __version__)
                return
            else:
                await client.replace(CRDResource(**replacement(served, wanted)), field_manager=FIELD_MANAGER)
                log.info("CRD %s replaced by llmpack %s's (%s)", name, __version__, summary(found))
        except ApiError as exc:
            if classify(exc) not in (Failure.CONFLICT, Failure.RETRY) or attempt == ATTEMPTS:
                raise
            log.debug("CRD %s: %s, reading it again", name, exc.status.message)
            await asyncio.sleep(min(2.0 ** attempt / 4, 4.0))
            continue
        await _until_established(client, name)
        return


async def _get(client: AsyncClient, name: str) -> dict[str, Any] | None:
    return await kube.read(client, {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                                    "metadata": {"name": name}})


async def _until_established(client: AsyncClient, name: str) -> None:
    deadline = time.monotonic() + ESTABLISHED_WITHIN
    while not established((await _get(client, name)) or {}):
        if time.monotonic() > deadline:
            log.warning("CRD %s is not Established after %.0f s; its watch starts anyway and retries", name,
                        ESTABLISHED_WITHIN)
            return
        await asyncio.sleep(0.2)
