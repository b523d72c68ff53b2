"""What a judgement comes to: a Problem stops a model (its Ready condition and phase say it), a Report is
one condition as found."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """Why a model cannot be applied or cannot progress; `reason` is CamelCase, `message` says what to do."""

    reason: str
    message: str


@dataclass(frozen=True)
class Report:
    """One condition: `ok` None means Unknown."""

    type: str
    ok: bool | None
    reason: str
    message: str
