"""What walking a routing plan came to: the gateway's verdict on what was applied, and each condition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmpack.assess.report import Problem, Report
from llmpack.render.plan import Plan


@dataclass(frozen=True)
class Routes:
    reports: tuple[Report, ...] = ()  # one per condition of the plan, in its order
    endpoints: Mapping[str, str] = field(default_factory=dict)  # status.endpoints: side -> URL, while in place

    @property
    def failed(self) -> bool:
        """A group the API server would not take: nothing we watch announces its fix (a policy or permission
        changed, a resource now served), so the pass must be retried, as a refused child of the model is."""
        return any(report.reason == "ApplyFailed" for report in self.reports)


def refusal(obj: dict[str, Any] | None) -> str | None:
    """The gateway's own words when it did not accept a route or policy; None when it did or has not judged.

    Envoy Gateway reports per ancestor (status.ancestors[].conditions, Accepted=False); Envoy AI Gateway
    on the object (status.conditions: Accepted=False or NotAccepted=True).
    """
    status = (obj or {}).get("status") or {}
    conditions = list(status.get("conditions") or [])
    for ancestor in status.get("ancestors") or []:
        conditions += ancestor.get("conditions") or []
    for c in conditions:
        if (c.get("type"), c.get("status")) in (("Accepted", "False"), ("NotAccepted", "True")):
            return f"{c.get('reason') or 'NotAccepted'}: {c.get('message') or 'no message'}"
    return None


def routes(plan: Plan, stopped: Mapping[str, Problem]) -> Routes:
    """Each condition of the plan: the problem that stopped one of its groups, else Applied with the message of
    its last group; an endpoint is reported only while its condition holds."""
    reports: list[Report] = []
    endpoints: dict[str, str] = {}
    for condition in plan.conditions:
        if (problem := stopped.get(condition)) is not None:
            reports.append(Report(condition, False, problem.reason, problem.message))
            continue
        last = [group for group in plan.groups if group.condition == condition][-1]
        reports.append(Report(condition, True, "Applied", last.done))
        if last.endpoint is not None:
            side, url = last.endpoint
            endpoints[side] = url
    return Routes(tuple(reports), endpoints)
