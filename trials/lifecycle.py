"""A trial's lifecycle: which status may follow which. The one table every transition is checked against."""

from __future__ import annotations

from enum import StrEnum


class TrialStatus(StrEnum):
    DRAFT = "draft"
    BASELINE = "baseline"
    RUNNING = "running"
    EVALUATING = "evaluating"
    CONCLUDED = "concluded"
    STOPPED = "stopped"


ALLOWED_TRANSITIONS: dict[TrialStatus, tuple[TrialStatus, ...]] = {
    TrialStatus.DRAFT: (TrialStatus.BASELINE,),
    TrialStatus.BASELINE: (TrialStatus.RUNNING, TrialStatus.STOPPED),
    TrialStatus.RUNNING: (TrialStatus.EVALUATING, TrialStatus.STOPPED),
    TrialStatus.EVALUATING: (TrialStatus.CONCLUDED, TrialStatus.STOPPED),
    TrialStatus.CONCLUDED: (),
    TrialStatus.STOPPED: (),
}

# A finished trial is a record of what happened: it is no longer edited or enrolled into.
FINISHED = frozenset({TrialStatus.CONCLUDED, TrialStatus.STOPPED})


def allowed_from(status: TrialStatus) -> tuple[TrialStatus, ...]:
    return ALLOWED_TRANSITIONS[status]


def is_allowed(current: TrialStatus, target: TrialStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]
