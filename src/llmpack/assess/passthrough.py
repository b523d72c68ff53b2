"""The truth about a PassthroughModel, from what walking its plan came to. Pure.

phase: Error when the backend cannot be configured (the credential Secret or its key is missing, an object was
refused) or a route was refused; Pending while something is still awaited (a CRD, the backend before the
routes); Ready once the backend is in place and every enabled side routes. A side that is switched off, or the
internal side of an operator without an OIDC issuer, is not waited for; at least one side must route.
"""

from __future__ import annotations

from typing import Any

from llmpack.api import Condition, ConditionStatus
from llmpack.api.passthrough import PassthroughModel, PassthroughModelStatus, PassthroughPhase, models_summary
from llmpack.api.status import EndpointStatus
from llmpack.assess.claims import Claim
from llmpack.assess.report import Problem, Report
from llmpack.assess.routing import Routes
from llmpack.render.passthrough_plan import BACKEND_CONFIGURED

FAILED = frozenset({"CredentialMissing", "ApplyFailed", "NotAccepted", "ModelIdConflict"})
NOT_WAITED_FOR = frozenset({"EndpointDisabled", "NotConfigured"})


def _condition(report: Report) -> Condition:
    status = ConditionStatus.UNKNOWN if report.ok is None else ConditionStatus(str(report.ok))
    return Condition(type=report.type, status=status, reason=report.reason, message=report.message)


def phase(reports: tuple[Report, ...]) -> PassthroughPhase:
    stopped = [r for r in reports if not r.ok and r.reason not in NOT_WAITED_FOR]
    if any(r.reason in FAILED for r in stopped):
        return PassthroughPhase.ERROR
    if stopped:
        return PassthroughPhase.PENDING
    if not any(r.ok for r in reports if r.type != BACKEND_CONFIGURED):
        return PassthroughPhase.ERROR  # nothing routed at all: say so rather than Ready
    return PassthroughPhase.READY


def claim_fields(claim: Claim | None) -> dict[str, Any]:
    """status.modelIds, catchAll and modelIdsClaimedAt: what it claims, and since when (a restart decides the
    same way from them)."""
    if claim is None:
        return {}
    return {"model_ids": sorted(claim.ids), "catch_all": claim.catch_all, "model_ids_claimed_at": claim.claimed_at}


def compute(pm: PassthroughModel, routes: Routes, claim: Claim | None = None) -> PassthroughModelStatus:
    """The status to report, before transition times are carried over (assess.status.settle)."""
    return PassthroughModelStatus(
        phase=phase(routes.reports), observed_generation=pm.metadata.generation,
        conditions=[_condition(r) for r in routes.reports], models=models_summary(pm.spec.models),
        endpoints=EndpointStatus.model_validate(dict(routes.endpoints)) if routes.endpoints else None,
        **claim_fields(claim))


def refused(problem: Problem, generation: int | None, claim: Claim | None = None) -> PassthroughModelStatus:
    """A PassthroughModel that cannot be planned at all (a spec our models refuse, a name taken)."""
    return PassthroughModelStatus(phase=PassthroughPhase.ERROR, observed_generation=generation, conditions=[
        Condition(type=BACKEND_CONFIGURED, status=ConditionStatus.FALSE, reason=problem.reason,
                  message=problem.message)], **claim_fields(claim))
