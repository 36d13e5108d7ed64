"""The one answer to "where was device D deployed at time t?".

The API (through the repository) and the ingest worker's cache both load a device's deployments
and ask `placement_at`; nothing else decides it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Placement:
    """A deployment: the device in a trial at a site (and unit), or with a participant."""

    deployment_id: int
    device_id: str
    trial_id: int
    site_id: int
    unit_id: int | None
    participant_id: int | None
    valid_from: datetime
    valid_until: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)


def placement_at(placements: Iterable[Placement], at: datetime) -> Placement | None:
    # Deployments of one device never overlap (exclusion constraint), so at most one matches.
    return next((p for p in placements if p.covers(at)), None)
