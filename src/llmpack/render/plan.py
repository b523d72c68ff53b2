"""The routing plan of one model: what routing (and monitoring) adds to it, in which order, behind which
gates, and which status condition each part reports to. Pure: `plan(model, config, facts)` is all the operator walks
(operator/routes.py) and all `llmpack render --routing` prints, so the two cannot drift.

A plan is an ordered tuple of groups. A group is a few objects that go together (the pool and its picker;
a side's key objects; its policy; its route), the CRDs they need, and its gate: the first thing it still
waits for (a Ready replica, a CRD, an enabled side), with the reason and message its condition shows
meanwhile. Order is a promise: within a condition, a group is applied only after every group before it
went through, so a policy always precedes its route and a route is never open without its policy.

Facts are what the plan needs to know about the cluster, gathered once per reconcile by the operator,
including the versions each CRD serves: a kind we write in several versions (AIGatewayRoute) is rendered
in the newest one the cluster serves.
What is routed is a `Routed`: the side groups (keys, policy, route) take their names, objects and first
gates from it, so another routed kind reuses them with its own objects, and a new precondition is one more
fact and one more gate: who owns a model id (assess/claims.py) is one, `ids_owned`, which closes a side,
and removes its route and policy, while another object owns the ids it serves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmpack.api import LLMModel, names
from llmpack.assess.claims import Claim, Target
from llmpack.assess.report import Problem
from llmpack.config import Config
from llmpack.kinds import (
    AI_GATEWAY_ROUTE,
    INFERENCE_POOL,
    POD_MONITOR,
    SECURITY_POLICY,
    THIRD_PARTY,
    Kind,
    installs,
    newest_served,
)
from llmpack.render import auth, keymanager_rbac, monitoring, routing
from llmpack.render.auth import SIDES, Side
from llmpack.render.serving import PORT

POOL_READY = "InferencePoolReady"
ENDPOINT_READY: dict[Side, str] = {"external": "ExternalEndpointReady", "internal": "InternalEndpointReady"}
MONITORING_READY = "MonitoringReady"
POOL_CRD, POLICY_CRD, ROUTE_CRD = INFERENCE_POOL.crd, SECURITY_POLICY.crd, AI_GATEWAY_ROUTE.crd
MONITOR_CRD = POD_MONITOR.crd
_STILL_SERVES = "the model still serves inside the cluster"


@dataclass(frozen=True)
class Facts:
    """What the plan needs to know about the cluster."""

    crds: frozenset[str] = frozenset()  # established CRDs, by name
    ready: int = 0  # Ready replicas of the current weights
    key_secrets: frozenset[str] = frozenset()  # the namespace's `<m>-api-keys` Secrets known to exist
    client_ids: tuple[str, ...] | None = None  # this model's; None: its key Secret does not exist (yet)
    keys_unreadable: str | None = None  # why this model's key Secret could not be read
    key_metadata_uid: str | None = None  # of this model's key metadata ConfigMap, once it exists
    # Who owns which model id (assess/claims.py): known once the operator holds every claim (Store.synced);
    # until then no route is applied or removed. `taken`: the ids this object claims that another owns.
    claims_known: bool = False
    taken: Mapping[Target, Claim] = field(default_factory=dict)
    served: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # CRD name -> the versions it serves

    def version(self, kind: Kind) -> str:
        """The version of `kind` to write: the newest we speak that the cluster serves."""
        return newest_served(kind, self.served.get(kind.crd, ()))


def offline_facts() -> Facts:
    """A model as `llmpack render --routing` shows it: a replica Ready, every CRD installed, no keys yet, its
    model id its own."""
    return Facts(crds=frozenset(kind.crd for kind in THIRD_PARTY), ready=1, claims_known=True)


@dataclass(frozen=True)
class Gate:
    """What a group still waits for (`name`, for people and tests), and what its condition says meanwhile."""

    name: str
    problem: Problem


@dataclass(frozen=True)
class Ref:
    kind: str
    name: str


@dataclass(frozen=True)
class Group:
    condition: str  # the status condition this group reports to
    name: str
    applies: tuple[dict[str, Any], ...] = ()  # server-side applied, in order, where the cluster differs
    creates: tuple[dict[str, Any], ...] = ()  # created when missing, never changed: their content is not ours
    needs: tuple[str, ...] = ()  # CRDs
    gate: Gate | None = None  # closed: the group holds no objects, its condition reports the gate
    removes: tuple[Ref, ...] = ()  # deleted when present, gate or not (a disabled side's route and policy)
    quiet: bool = False  # reports no condition of its own (what a switched-off option leaves behind is removed)
    judged: bool = False  # the gateway says in their status whether it accepted what `applies` holds
    done: str = ""  # the condition's message once every group of it is in place
    endpoint: tuple[str, str] | None = None  # (status.endpoints field, URL) while the condition holds

    @property
    def objects(self) -> tuple[dict[str, Any], ...]:
        return (*self.creates, *self.applies)


@dataclass(frozen=True)
class Plan:
    groups: tuple[Group, ...]

    @property
    def objects(self) -> list[dict[str, Any]]:
        """Every object of every group, in order (what `llmpack render --routing` prints)."""
        return [obj for group in self.groups for obj in group.objects]

    @property
    def conditions(self) -> tuple[str, ...]:
        """The conditions the plan reports, in order: those with a group that is not quiet."""
        return tuple(dict.fromkeys(group.condition for group in self.groups if not group.quiet))


# -- gates: each returns the closed Gate, or None when open ------------------------------------------------

def _first(*gates: Gate | None) -> Gate | None:
    return next((gate for gate in gates if gate is not None), None)


def replica_ready(facts: Facts, what: str) -> Gate | None:
    if facts.ready:
        return None
    return Gate("replica ready", Problem("WaitingForReplica", f"{what} is created once a replica is Ready"))


def crds_present(facts: Facts, needs: tuple[str, ...], named: tuple[str, ...], consequence: str) -> Gate | None:
    """Closed while any of `needs` is missing; the message names every one of `named` that is missing, so the
    user learns in one reading all that the condition still lacks."""
    if all(crd in facts.crds for crd in needs):
        return None
    missing = [crd for crd in named if crd not in facts.crds]
    how = "; ".join(f"{crd} comes with {installs(crd)}" for crd in missing)
    return Gate("CRDs present", Problem("CRDMissing", f"CRD not installed: {', '.join(missing)} ({how}; see "
                                        f"docs/routing.md); {consequence}"))


def side_enabled(subject: Routed, side: Side) -> Gate | None:
    if subject.enabled(side):
        return None
    return Gate("side enabled", Problem("EndpointDisabled", f"endpoints.{side}.enabled is false"))


def oidc_configured(config: Config, side: Side) -> Gate | None:
    if side == "external" or config.oidc_issuer:
        return None
    return Gate("OIDC configured", Problem("NotConfigured", "the operator has no OIDC issuer (Helm value "
                                           "auth.oidc.issuer, LLMPACK_OIDC_ISSUER): the internal route is not "
                                           "applied without its policy"))


def ids_owned(subject: Routed, facts: Facts) -> Gate | None:
    """Closed until the operator knows every claim, and while another object owns every id the subject
    serves: the shared hostnames route an id to its owner only (docs/routing.md, "Model ids")."""
    if not facts.claims_known:
        return Gate("claims known", Problem("ClaimsUnknown", "the operator has not yet read every model, so it "
                                            "cannot tell who owns this model id: routes wait"))
    if not subject.ids or any(target not in facts.taken for target in subject.ids):
        return None
    owned = "; ".join(f"model id {_target(t)} is owned by {c}, which claimed it first ({c.claimed_at})"
                      for t, c in sorted(facts.taken.items(), key=lambda item: item[1].rank) if t in subject.ids)
    return Gate("model ids owned", Problem("ModelIdConflict", f"{owned}: the shared hostnames route it there "
                                           f"only, until that one is deleted or its id changes; {_STILL_SERVES}"))


def _target(target: Target) -> str:
    return "(catch-all)" if target is None else target


def keys_readable(facts: Facts, secret: str) -> Gate | None:
    if facts.keys_unreadable is None:
        return None
    return Gate("key Secret readable", Problem("ApplyFailed", f"Secret {secret}: {facts.keys_unreadable}"))


# -- the plan ----------------------------------------------------------------------------------------------

Objects = tuple[dict[str, Any], ...]


def _if_open(gate: Gate | None, build: Callable[[], Objects]) -> Objects:
    """A closed group holds no objects: nothing of it is applied, so nothing of it is rendered (a reconcile
    plans every model on every event; most of them wait for a replica or a CRD)."""
    return build() if gate is None else ()


def pool_group(model: LLMModel, config: Config, facts: Facts) -> Group:
    gate = _first(crds_present(facts, (POOL_CRD,), (POOL_CRD,), "the model still serves through its Service "
                               "inside the cluster"),
                  replica_ready(facts, "the InferencePool"))
    return Group(POOL_READY, "pool", applies=_if_open(gate, lambda: tuple(routing.routing(model, config))),
                 needs=(POOL_CRD,), gate=gate, done=f"InferencePool {names.inference_pool(model.name)} and its "
                 f"endpoint picker {names.epp(model.name)} are in place")


@dataclass(frozen=True)
class Routed:
    """What a side's groups need of whatever they route. An LLMModel is one (`routed`); a PassthroughModel
    shares the same keys, policies and order with its own objects and gates. The render functions are
    called only for groups whose gate is open."""

    name: str
    serves: str  # what the routes carry, for the condition's message
    ids: tuple[Target, ...]  # the model ids its routes match (CATCH_ALL: any id nobody else claims)
    enabled: Callable[[Side], bool]
    before: Callable[[Side], Gate | None]  # what every group of a side waits for first (a Ready replica)
    route_crds: tuple[str, ...]  # what a route needs to exist
    key_secret: Callable[[], dict[str, Any]]  # created empty, for a key manager to fill
    key_metadata: Callable[[], dict[str, Any]]
    key_access: Callable[[], Objects]  # applied after the key metadata: the key manager's Role, when there is one
    policy: Callable[[Side, list[str], tuple[str, ...]], dict[str, Any]]  # (credential Secrets, client ids)
    route: Callable[[Side], dict[str, Any]]


def routed(model: LLMModel, config: Config, facts: Facts) -> Routed:
    """An LLMModel's routes wait for a Ready replica and carry requests to its InferencePool."""
    owned = not keymanager_rbac.retains_keys(config)
    return Routed(
        name=model.name, serves=model.spec.model.name, ids=(model.spec.model.name,),
        enabled=lambda side: auth.enabled(model, side),
        before=lambda side: replica_ready(facts, f"the {side} route"), route_crds=(POOL_CRD, POLICY_CRD, ROUTE_CRD),
        key_secret=lambda: auth.key_secret(model, owned=owned),
        key_metadata=lambda: auth.key_metadata(model, owned=owned),
        key_access=lambda: tuple(keymanager_rbac.access_for(model, config, facts.key_metadata_uid)),
        policy=lambda side, secrets, ids: auth.policy(model, config, side, secrets, ids),
        route=lambda side: auth.route(model, config, side, facts.version(AI_GATEWAY_ROUTE)))


def _policy_gate(subject: Routed, facts: Facts) -> Gate | None:
    """What the external policy, which names the client ids, waits for."""
    return _first(side_enabled(subject, "external"), ids_owned(subject, facts), subject.before("external"),
                  crds_present(facts, (POLICY_CRD,), subject.route_crds, _STILL_SERVES))


def reads_keys(model: LLMModel, config: Config, facts: Facts) -> bool:
    """Whether the operator reads this model's key Secret before planning: its external policy would be open."""
    return _policy_gate(routed(model, config, facts), facts) is None


def key_group(subject: Routed, facts: Facts) -> Group:
    """The key objects, from the first reconcile on and whatever the side, its replicas and CRDs (as the Serving
    Pack creates them): keys can be issued before the model is Ready. The Secret is created only while it is
    not known to exist, and never written after."""
    own_secret = names.api_keys(subject.name)
    gate = keys_readable(facts, own_secret)
    missing = facts.client_ids is None and own_secret not in facts.key_secrets
    return Group(ENDPOINT_READY["external"], "external keys", gate=gate,
                 creates=_if_open(gate, lambda: (subject.key_secret(),) if missing else ()),
                 applies=_if_open(gate, lambda: (subject.key_metadata(), *subject.key_access())))


def side_groups(subject: Routed, config: Config, facts: Facts, side: Side) -> tuple[Group, ...]:
    """A side's key objects (external only, whether the side is on or not, and whoever owns its ids), its
    SecurityPolicy, then its AIGatewayRoute; or, for a side that is off or whose ids another object owns, one
    closed group that removes what it had."""
    condition = ENDPOINT_READY[side]
    route_name, policy_name = names.route(subject.name, side), names.policy(subject.name, side)
    groups: list[Group] = [key_group(subject, facts)] if side == "external" else []
    # The route goes first: a route is never left open without its policy.
    had = (Ref(AI_GATEWAY_ROUTE.kind, route_name), Ref(SECURITY_POLICY.kind, policy_name))
    if off := _first(side_enabled(subject, side), oidc_configured(config, side)):
        return (*groups, Group(condition, f"{side} off", gate=off, removes=had))
    if taken := ids_owned(subject, facts):
        # Claims unknown: nothing is decided, so nothing is removed either.
        return (*groups, Group(condition, f"{side} ids", gate=taken, removes=had if facts.claims_known else ()))
    before = subject.before(side)
    own_secret = names.api_keys(subject.name)
    # Every key Secret of the namespace authenticates (this model's own exists, or its group creates it).
    gate = _first(before, crds_present(facts, (POLICY_CRD,), subject.route_crds, _STILL_SERVES))
    secrets = sorted(facts.key_secrets | {own_secret})
    groups.append(Group(condition, f"{side} policy", gate=gate, needs=(POLICY_CRD,), judged=True,
                        applies=_if_open(gate, lambda: (subject.policy(side, secrets, facts.client_ids or ()),))))
    host = auth.hostname(config, side)
    where = host or "the Gateway's listener (routing.baseDomain is not set)"
    gate = _first(before, crds_present(facts, subject.route_crds, subject.route_crds, _STILL_SERVES))
    groups.append(Group(
        condition, f"{side} route", gate=gate, needs=subject.route_crds, judged=True,
        applies=_if_open(gate, lambda: (subject.route(side),)),
        done=f"{where} routes requests for {subject.serves} here (route {route_name}, policy {policy_name})",
        endpoint=(side, f"https://{host}") if host else None))
    return tuple(groups)


def monitoring_group(model: LLMModel, facts: Facts) -> Group:
    """A PodMonitor while `serving.monitoring.enabled` (once its CRD exists); none, and no condition, while not."""
    name = names.pod_monitor(model.name)
    if not model.spec.serving.monitoring.enabled:
        return Group(MONITORING_READY, "monitoring off", quiet=True, removes=(Ref(POD_MONITOR.kind, name),))
    gate = crds_present(facts, (MONITOR_CRD,), (MONITOR_CRD,), "the pods still carry prometheus.io/scrape "
                        "annotations for a Prometheus that discovers by annotation")
    return Group(MONITORING_READY, "monitoring", applies=_if_open(gate, lambda: (monitoring.pod_monitor(model),)),
                 needs=(MONITOR_CRD,), gate=gate, done=f"PodMonitor {name} scrapes {monitoring.METRICS_PATH} on "
                 f"port http ({PORT}) of every vLLM pod every {monitoring.INTERVAL}")


def plan(model: LLMModel, config: Config, facts: Facts) -> Plan:
    """The pool first, then each side, then monitoring: what a model gets beyond its own objects as the cluster
    allows, decided once from spec, config and facts."""
    subject = routed(model, config, facts)
    return Plan((pool_group(model, config, facts),
                 *(group for side in SIDES for group in side_groups(subject, config, facts, side)),
                 monitoring_group(model, facts)))
