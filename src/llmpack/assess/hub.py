"""Where the sizing step stands, for status: a Problem that stops the model (the PVC is too small, the Hub
refused to size it) or what it waits for meanwhile (the Hub's answer). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from llmpack.api import LLMModel
from llmpack.assess.report import Problem
from llmpack.assess.sizing import HubFacts, HubSize
from llmpack.render import sizing


@dataclass(frozen=True)
class SizingState:
    problem: Problem | None = None  # the model cannot go on until someone acts
    waiting: Problem | None = None  # the model waits for the Hub (reason and message for ModelReady)


def sizing_state(model: LLMModel, hub: HubFacts, report: HubSize | None, job: str | None) -> SizingState:
    """`job`: the sizing Job's state (running, succeeded, failed, or None before it exists)."""
    if not sizing.needs_sizing(model, hub):
        return SizingState()
    name, repo = sizing.job_name(model), model.spec.model.name
    if (too_small := sizing.too_small_problem(model, hub)) is not None:
        return SizingState(problem=Problem("StorageTooSmall", too_small))
    if report is not None and report.error and not report.retrying:
        return SizingState(problem=Problem("SizingFailed", f"the Hub would not size {repo}: {report.error}; then "
                                           f"delete the Job {name} to ask again"))
    if job == "failed":
        return SizingState(problem=Problem("SizingFailed", f"the sizing Job {name} failed: see `kubectl logs "
                                           f"job/{name}`; fix the cause, then delete the Job to ask again"))
    if hub.bytes is not None or sizing.download_may_start(model, hub):
        return SizingState()
    if report is not None and report.retrying:
        return SizingState(waiting=Problem("HubUnreachable", f"cannot ask the Hub what {repo} takes: {report.error}; "
                                           "retrying. Set spec.model.storage.size to create the PVC without the "
                                           "Hub's figure"))
    if job == "succeeded" and report is None:
        return SizingState(waiting=Problem("SizeUnknown", f"the sizing Job {name} ended without reporting a size: "
                                           "set spec.model.storage.size, or delete the Job to ask again"))
    return SizingState(waiting=Problem("Sizing", f"asking the Hub what {repo} takes (Job {name}): the PVC is sized "
                                       "and the download starts once it answers"))
