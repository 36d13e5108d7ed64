"""The one answer to "was scope S active for participant P at time t?".

The API (through the repository) and the ingest worker's cache both load a participant's consent
periods and ask `scope_active`; nothing else decides it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Scope(StrEnum):
    TELEMETRY = "telemetry"
    COMPANY_DASHBOARDS = "company_dashboards"
    EVALUATION = "evaluation"


@dataclass(frozen=True, slots=True)
class ConsentPeriod:
    """One consent version, active on [valid_from, valid_until)."""

    scopes: frozenset[str]
    valid_from: datetime
    valid_until: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)


def scope_active(periods: Iterable[ConsentPeriod], scope: Scope | str, at: datetime) -> bool:
    return any(scope in period.scopes and period.covers(at) for period in periods)
