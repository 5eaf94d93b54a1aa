"""What the go-live gate reads: a data folder's journal, sorted into the facts it judges.

The gate decides from evidence livegate already journals, never from files
a person could edit after the fact: releases (adapter, versions, config
files), connection flips and starts, order intents, end-of-day
reconciliations, alerts, drill and certify verdicts, stages and safe-stops.
Reading is read-only: a running gateway keeps writing beside us.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from livegate.journal import replay_file
from livegate.model.events import (
    AlertChanged,
    ConnectionChanged,
    EodReconciled,
    EvidenceRecorded,
    GatewayStarted,
    ReleaseRecorded,
    SafeStopReport,
    StageChanged,
)
from livegate.model.orders import OrderIntent
from livegate.risk.rollout import RolloutPlan, parse_plan

CAPS = ("max_gross_exposure", "max_daily_notional", "max_orders_per_day", "max_position")


@dataclass
class Current:
    """The release the gate judges: what `serve` runs (or last ran) on this folder."""

    adapter_module: str
    adapter_version: str
    config_id: str
    calendar: str = ""
    rollout: RolloutPlan | None = None
    rollout_error: str = ""
    alert_sinks: tuple[str, ...] = ()

    @property
    def adapter(self) -> str:
        return f"{self.adapter_module} {self.adapter_version}"


@dataclass
class Evidence:
    """The journal's facts, each with its sequence number."""

    first_ns: int = 0
    last_ns: int = 0  # the latest stamp a gateway wrote (verdicts left by commands aside)
    releases: list[tuple[int, ReleaseRecorded]] = field(default_factory=list)
    starts: list[tuple[int, GatewayStarted]] = field(default_factory=list)
    connections: list[tuple[int, ConnectionChanged]] = field(default_factory=list)
    intents: list[int] = field(default_factory=list)  # ts_ns of each order intent
    eods: list[tuple[int, EodReconciled]] = field(default_factory=list)
    alerts: list[tuple[int, AlertChanged]] = field(default_factory=list)
    verdicts: list[tuple[int, EvidenceRecorded]] = field(default_factory=list)
    stages: list[tuple[int, StageChanged]] = field(default_factory=list)
    safe_stops: list[tuple[int, SafeStopReport]] = field(default_factory=list)
    # The last stamp of each run before a start: where a killed run's connection ended.
    run_ends: dict[int, int] = field(default_factory=dict)  # start seq -> last ts before it

    def of_kind(self, kind: str) -> list[tuple[int, EvidenceRecorded]]:
        return [(seq, e) for seq, e in self.verdicts if e.kind == kind]


_SORT: dict[type, str] = {
    ReleaseRecorded: "releases",
    GatewayStarted: "starts",
    ConnectionChanged: "connections",
    EodReconciled: "eods",
    AlertChanged: "alerts",
    EvidenceRecorded: "verdicts",
    StageChanged: "stages",
    SafeStopReport: "safe_stops",
}


def read_evidence(data_dir: Path) -> Evidence:
    """Every fact the gate needs, from the folder's journal (read-only).

    Verdicts are stamped by the command that proved them (wall time), so they
    never move where a run ended.
    """
    found = Evidence()
    last_ts = 0
    for seq, event in replay_file(data_dir / "journal.sqlite"):
        ts = getattr(event, "ts_ns", 0) or getattr(event, "received_ns", 0)
        if ts and not found.first_ns:
            found.first_ns = ts
        if isinstance(event, OrderIntent):
            found.intents.append(event.ts_ns)
        elif (where := _SORT.get(type(event))) is not None:
            if isinstance(event, GatewayStarted):
                found.run_ends[seq] = last_ts
            getattr(found, where).append((seq, event))
        if ts and not isinstance(event, EvidenceRecorded):
            last_ts = max(last_ts, ts)
    found.last_ns = last_ts
    return found


def current_from_release(release: ReleaseRecorded, calendar: str) -> Current:
    """The release a gate judges, from a journaled (or about to be journaled) record."""
    current = Current(
        release.adapter_module,
        release.adapter_version,
        release.config_id,
        calendar,
        alert_sinks=release.alert_sinks,
    )
    for item in release.files:
        if item.role == "rollout":
            try:
                current.rollout = parse_plan(tomllib.loads(item.content))
            except (tomllib.TOMLDecodeError, msgspec.ValidationError, ValueError) as exc:
                current.rollout_error = f"{item.path}: {exc}"
    return current


def profile_calendar(release: ReleaseRecorded) -> str:
    """The calendar of the profile a release ran, from its journaled profiles file."""
    for item in release.files:
        if item.role != "profiles":
            continue
        try:
            raw = tomllib.loads(item.content)
        except tomllib.TOMLDecodeError:
            return ""
        table = raw.get("profiles", {}).get(release.profile_name, {})
        if isinstance(table, dict):
            return str(table.get("calendar", ""))
    return ""
