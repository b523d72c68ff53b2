"""The routing plan of a PassthroughModel: its provider's objects, then each side's key objects, policy and
route, exactly as an LLMModel's (render/plan.py `side_groups`, with the PassthroughModel as the `Routed`).

A side waits for the backend instead of a Ready replica: while the credential Secret (or its `apiKey`) is
missing, or a provider CRD is, nothing is routed (a request would fail upstream). The key objects do not
wait: keys can be issued before the provider is reachable.
"""

from __future__ import annotations

from llmpack.api import names
from llmpack.api.passthrough import CREDENTIAL_KEY, PassthroughModel
from llmpack.assess.claims import CATCH_ALL
from llmpack.assess.report import Problem
from llmpack.config import Config
from llmpack.kinds import AI_GATEWAY_ROUTE, AI_SERVICE_BACKEND, PROVIDER_KINDS
from llmpack.render import auth, keymanager_rbac, passthrough
from llmpack.render.auth import SIDES
from llmpack.render.plan import (
    POLICY_CRD,
    ROUTE_CRD,
    Facts,
    Gate,
    Group,
    Plan,
    Routed,
    crds_present,
    first_closed,
    if_open,
    side_groups,
)

BACKEND_CONFIGURED = "BackendConfigured"
PROVIDER_CRDS = tuple(kind.crd for kind in PROVIDER_KINDS)


def credential_usable(facts: Facts) -> Gate | None:
    if facts.credential is None:
        return None
    return Gate("credential usable", Problem("CredentialMissing", facts.credential))


def backend_gate(pm: PassthroughModel, facts: Facts) -> Gate | None:
    return first_closed(credential_usable(facts),
                  crds_present(facts, PROVIDER_CRDS, PROVIDER_CRDS, "nothing is routed to the provider"))


def backend_group(pm: PassthroughModel, facts: Facts) -> Group:
    gate = backend_gate(pm, facts)
    provider = pm.spec.provider
    return Group(BACKEND_CONFIGURED, "provider", needs=PROVIDER_CRDS, gate=gate,
                 applies=if_open(gate, lambda: passthrough.provider_objects(pm, facts.version(AI_SERVICE_BACKEND))),
                 done=f"Backend {names.provider_backend(pm.name)} ({provider.hostname}:{provider.port}, TLS "
                 f"{names.provider_tls(pm.name)}), AIServiceBackend {names.ai_service_backend(pm.name)} (OpenAI "
                 f"{provider.schema_version}) and BackendSecurityPolicy {names.upstream_auth(pm.name)} (key "
                 f"{CREDENTIAL_KEY} of Secret {provider.credential_secret_name}) are in place")


def _waits_for_backend(pm: PassthroughModel, facts: Facts) -> Gate | None:
    if (closed := backend_gate(pm, facts)) is None:
        return None
    return Gate("backend configured", Problem(
        "BackendNotConfigured", f"no route while the provider's backend is not configured: {closed.problem.message}"))


def owned(pm: PassthroughModel, facts: Facts) -> tuple[tuple[str, ...], bool]:
    """(the declared ids, whether the catch-all) this PassthroughModel owns: its routes match those only."""
    models = pm.spec.models
    return (tuple(i for i in models.declared if i not in facts.taken),
            models.catch_all and CATCH_ALL not in facts.taken)


def serves(pm: PassthroughModel, facts: Facts) -> str:
    declared, catch_all = owned(pm, facts)
    parts = [*([", ".join(declared)] if declared else []), *(["every other model id"] if catch_all else [])]
    what = " and ".join(parts)
    elsewhere = "; ".join(f"{'the catch-all' if t is CATCH_ALL else t} is owned by {c}, which claimed it first "
                          f"({c.claimed_at})" for t, c in sorted(facts.taken.items(), key=lambda item: item[1].rank))
    return f"{what} (not here: {elsewhere})" if elsewhere else what


def routed(pm: PassthroughModel, config: Config, facts: Facts) -> Routed:
    owned_keys = not keymanager_rbac.retains_keys(config)
    models = pm.spec.models
    declared, catch_all = owned(pm, facts)
    return Routed(
        name=pm.name, serves=serves(pm, facts), ids=(*models.declared, *((CATCH_ALL,) if models.catch_all else ())),
        enabled=lambda side: (pm.spec.endpoints.external if side == "external" else pm.spec.endpoints.internal).enabled,
        before=lambda side: _waits_for_backend(pm, facts), route_crds=(POLICY_CRD, ROUTE_CRD),
        key_secret=lambda: auth.key_secret(pm, owned=owned_keys),
        key_metadata=lambda: auth.key_metadata(pm, owned=owned_keys),
        key_access=lambda: tuple(keymanager_rbac.access_for(pm, config, facts.key_metadata_uid)),
        policy=lambda side, secrets, ids: auth.policy(pm, config, side, secrets, ids),
        route=lambda side: passthrough.route(pm, config, side, declared=declared, catch_all=catch_all,
                                             version=facts.version(AI_GATEWAY_ROUTE)))


def plan(pm: PassthroughModel, config: Config, facts: Facts) -> Plan:
    """The provider first, then each side."""
    subject = routed(pm, config, facts)
    return Plan((backend_group(pm, facts),
                 *(group for side in SIDES for group in side_groups(subject, config, facts, side))))
