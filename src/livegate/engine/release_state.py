"""What the journal says about release controls: the stage, a safe-stop under way, the release.

Kept beside the order book and rebuilt the same way (replayed in journal
order), so a restart resumes an unfinished safe-stop and keeps the stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livegate.model.enums import TradingState
from livegate.model.events import (
    EvidenceRecorded,
    ReleaseRecorded,
    SafeStopReport,
    SafeStopRequested,
    StageChanged,
    TradingStateChanged,
    VenueChanged,
)

ReleaseEvent = (
    StageChanged
    | SafeStopRequested
    | SafeStopReport
    | ReleaseRecorded
    | EvidenceRecorded
    | VenueChanged
)
RELEASE_EVENTS = (
    StageChanged,
    SafeStopRequested,
    SafeStopReport,
    ReleaseRecorded,
    EvidenceRecorded,
    VenueChanged,
)


@dataclass
class ReleaseState:
    stage: str | None = None  # None: the rollout file's first stage
    safe_stop: SafeStopRequested | None = None  # one not yet complete
    last_safe_stop: SafeStopReport | None = None
    release: ReleaseRecorded | None = None  # the latest start's
    evidence: list[EvidenceRecorded] = field(default_factory=list)
    venue: VenueChanged | None = None  # the latest switch (None: never fell back)
    paper_orders: set[str] = field(default_factory=set)  # sent while on paper

    @property
    def on_paper(self) -> bool:
        return self.venue is not None and self.venue.venue == "paper"

    def apply(self, event: ReleaseEvent) -> str:
        """Apply one event; the control command id it carries ('' when none)."""
        if isinstance(event, StageChanged):
            self.stage = event.stage
            return event.command_id
        if isinstance(event, SafeStopRequested):
            self.safe_stop = event
            return event.command_id
        if isinstance(event, SafeStopReport):
            self.last_safe_stop = event
            if event.complete and self.safe_stop and self.safe_stop.command_id == event.command_id:
                self.safe_stop = None
            return ""
        if isinstance(event, ReleaseRecorded):
            self.release = event
            return ""
        if isinstance(event, VenueChanged):
            self.venue = event
            return event.command_id
        self.evidence.append(event)
        return event.command_id

    def trading_state(self, event: TradingStateChanged) -> None:
        """Trading again: whatever a safe-stop had left to do is the operator's now."""
        if event.state is not TradingState.HALTED:
            self.safe_stop = None
