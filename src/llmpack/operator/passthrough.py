"""One idempotent pass for one PassthroughModel: check its credential Secret, gather the facts, walk its plan
(render/passthrough_plan.py) with the same Router as LLMModels, report. Like an LLMModel's pass it reads the
Store, applies only what differs and writes status only when it changed.

An LLMModel and a PassthroughModel of the same name in one namespace would own the same objects (key
Secret, routes, policies): the older one is reconciled, the newer one only told why not (`NameConflict`).
The credential Secret is read by name and only asked whether it holds `apiKey`: its value goes nowhere.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from pydantic import ValidationError

from llmpack.api import names
from llmpack.api.passthrough import CREDENTIAL_KEY, PASSTHROUGH_KIND, PassthroughModel, PassthroughModelStatus
from llmpack.assess.claims import Claim, lost
from llmpack.assess.passthrough import compute, refused
from llmpack.assess.report import Problem
from llmpack.assess.status import settle
from llmpack.config import Config
from llmpack.kinds import THIRD_PARTY
from llmpack.manifests import describe
from llmpack.operator import kube
from llmpack.operator.keys import ApiKeys
from llmpack.operator.routes import Router
from llmpack.operator.store import Body, Key, Store, key_of
from llmpack.render.passthrough_plan import plan, routed
from llmpack.render.plan import Facts, policy_open

log = logging.getLogger("llmpack.reconcile")


def older(first: Body, second: Body) -> bool:
    """Whether `first` was created before `second` (ISO-8601 UTC stamps compare as strings)."""
    return str(first["metadata"].get("creationTimestamp") or "") < str(second["metadata"].get("creationTimestamp")
                                                                        or "")


def name_conflict(loser: str, owner: str, key: Key) -> Problem:
    """What the newer of an LLMModel (`loser` or `owner`: kinds) and a PassthroughModel of one name is told."""
    return Problem("NameConflict", f"{owner} {key[0]}/{key[1]} (older) has the same name, and the two would own "
                   f"the same objects (key Secret, routes, policies): rename this {loser}; nothing is applied for "
                   "it meanwhile")


class Passthroughs:
    def __init__(self, client: AsyncClient, store: Store, config: Config, keys: ApiKeys, router: Router) -> None:
        self.client, self.store, self.config, self.keys, self.router = client, store, config, keys, router

    async def reconcile(self, key: Key) -> bool:
        """Returns True when it should be looked at again soon (its credential Secret is missing, or a route
        was refused)."""
        body = self.store.passthroughs.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return False  # owner references let the garbage collector remove the children
        try:
            pm = PassthroughModel.from_body({k: v for k, v in body.items() if k != "status"})
        except ValidationError as exc:
            await self.refuse(body, Problem("InvalidSpec", f"{describe(exc.errors()[0])}; fix the manifest and "
                                            "apply it again"))
            return False
        assert pm.namespace is not None
        secret = pm.spec.provider.credential_secret_name
        credential = await kube.secret_problem(self.client, pm.namespace, secret, CREDENTIAL_KEY,
                                               what="the provider's API key", sample="<the provider's API key>")
        claim = self.store.model_claim(key, PASSTHROUGH_KIND)
        facts = await self._facts(key, pm, credential, claim)
        routes = await self.router.walk(key, plan(pm, self.config, facts))
        await self._report(body, compute(pm, routes, claim))
        return credential is not None or routes.failed  # nothing we may watch announces their fix: look again

    async def _facts(self, key: Key, pm: PassthroughModel, credential: str | None, claim: Claim | None) -> Facts:
        crds = frozenset(kind.crd for kind in THIRD_PARTY if kind.crd in self.store.crds)
        key_metadata = self.store.child(key, "ConfigMap", names.key_metadata(pm.name)) or {}
        facts = Facts(crds=crds, credential=credential,
                      claims_known=self.store.synced and claim is not None,
                      taken=lost(claim, self.store.claim_index) if claim is not None else {},
                      key_metadata_uid=(key_metadata.get("metadata") or {}).get("uid"),
                      served={crd: self.store.served.get(crd, ()) for crd in crds})
        if policy_open(routed(pm, self.config, facts), facts):
            client_ids, unreadable = await self.keys.client_ids(key)
            facts = replace(facts, client_ids=client_ids, keys_unreadable=unreadable)
        return replace(facts, key_secrets=self.keys.secrets(key[0]))

    async def refuse(self, body: Body, problem: Problem) -> None:
        claim = self.store.model_claim(key_of(body), PASSTHROUGH_KIND)
        await self._report(body, refused(problem, body["metadata"].get("generation"), claim))

    async def _report(self, body: Body, status: PassthroughModelStatus) -> None:
        meta = body["metadata"]
        previous = _parse_status(body.get("status"))
        status = settle(status, previous, kube.now(), meta.get("generation"))
        if previous is not None and status.wire() == previous.wire():
            return
        await kube.apply_status(self.client, meta["namespace"], meta["name"], status.wire(), kind=PASSTHROUGH_KIND)
        if previous is not None and previous.phase == status.phase:
            return
        why = next((c for c in status.conditions if c.status != "True"), status.conditions[0])
        where = f"{meta['namespace']}/{meta['name']}"
        log.info("%s: %s -> %s (%s: %s)", where, previous.phase if previous else "new", status.phase, why.reason,
                 why.message, extra={"model": where})
        message = why.message if why.status != "True" else f"{status.models} routed to " \
            f"{body['spec']['provider']['hostname']}"
        try:
            await kube.record_event(self.client, body, "Warning" if status.phase == "Error" else "Normal",
                                    str(status.phase), message)
        except ApiError as exc:  # an Event is a courtesy; the status above is the truth
            log.debug("%s: event not recorded: %s", where, exc.status.message)


def _parse_status(raw: Any) -> PassthroughModelStatus | None:
    if not raw:
        return None
    try:
        return PassthroughModelStatus.model_validate(raw)
    except ValidationError:
        return None  # written by something else; ours replaces it
