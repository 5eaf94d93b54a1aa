"""One gate evaluation on a data folder: which release, which evidence, and the record.

The verdict is journaled like any other evidence. With a gateway running on
the folder it is left in the control folder for that gateway (the one
writer of its journal); with none, the gate takes the writer's lock itself
and journals it, together with verdicts drills and certify left waiting.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from livegate.engine.control import (
    evidence_event,
    read_evidence_commands,
    remove_evidence_command,
    write_evidence_command,
)
from livegate.gate.criteria import evaluate
from livegate.gate.evidence import Current, Evidence, current_from_release, profile_calendar
from livegate.gate.evidence import read_evidence as read_journal
from livegate.gate.rules import GateFile, Verdict, load_gate_file
from livegate.journal import Journal, SQLiteStore
from livegate.journal.locate import postgres_of, writer_running
from livegate.journal.lock import JournalLockedError
from livegate.model.clock import SYSTEM_CLOCK, Clock
from livegate.model.events import EvidenceRecorded, ReleaseRecorded
from livegate.ops.config_files import load_config, release_record
from livegate.ops.profiles import Profile, ProfileError


class GateError(ProfileError):
    """The gate cannot be evaluated as asked (no release, a bad gate file)."""


def current_from_profile(profile: Profile, found: Evidence) -> Current:
    """The release `serve --config --profile` would run now.

    Alert sinks: the profile's webhook, and what the last run of this config
    journaled (`serve --webhook` is an option, not a file).
    """
    from livegate.ops.wiring import adapter_type

    loaded = load_config(profile)
    release = release_record(adapter_type(profile), loaded.files, profile.name)
    ran = [r for _, r in found.releases if r.config_id == release.config_id]
    sinks = ran[-1].alert_sinks if ran else ()
    if profile.webhook and "webhook" not in sinks:
        sinks = (*sinks, "webhook")  # serve on this profile posts to it
    current = current_from_release(release, profile.calendar)
    current.alert_sinks = sinks
    return current


def current_from_journal(found: Evidence) -> Current:
    """The release last served on the folder, as its journal recorded it."""
    if not found.releases:
        raise GateError(
            "no release was ever started on this folder: give --config and --profile,"
            " or serve it first"
        )
    release: ReleaseRecorded = found.releases[-1][1]
    return current_from_release(release, profile_calendar(release))


def take_waiting_evidence(data_dir: Path, wait: float = 5.0) -> bool:
    """Verdicts drills and certify left for the folder's gateway are journaled before
    the gate reads: by the running gateway (we wait for it), else by us. True when
    no gateway runs (the gate then journals its own verdict itself)."""
    control = data_dir / "control"
    journal = data_dir / "journal.sqlite"
    if writer_running(journal):
        deadline = time.monotonic() + wait
        while read_evidence_commands(control) and time.monotonic() < deadline:
            time.sleep(0.1)
        return False
    waiting = read_evidence_commands(control)
    if waiting:
        if not _append_offline(data_dir, [evidence_event(c) for c in waiting]):
            return False
        for command in waiting:
            remove_evidence_command(control, command.command_id)
    return True


def _append_offline(data_dir: Path, events: list[EvidenceRecorded]) -> bool:
    """Journal `events` with the writer's lock; False when a gateway took it first, or
    when the journal is in PostgreSQL (only a lease holder writes it: they stay queued
    for the gateway's next start)."""
    if postgres_of(data_dir / "journal.sqlite") is not None:
        return False
    journal = Journal(SQLiteStore(data_dir / "journal.sqlite"))
    try:
        journal.open()
    except JournalLockedError:
        return False
    try:
        journal.write_now(events)
    finally:
        journal.store.close()
    return True


def record_verdict(data_dir: Path, verdict: Verdict, who: str, offline: bool) -> str:
    """Journal the verdict (who asked, the result, each criterion with its evidence);
    says where it went."""
    detail = json.dumps(
        {
            "who": who,
            "summary": verdict.summary(),
            "criteria": [
                {"name": c.name, "passed": c.passed, "evidence": c.evidence, "todo": c.todo}
                for c in verdict.criteria
            ],
        }
    )
    passed = tuple(c.name for c in verdict.criteria if c.passed)
    command = write_evidence_command(
        data_dir / "control", "gate", verdict.adapter, verdict.passed, 0, verdict.config_id,
        detail, verdict.adapter, passed,
    )  # fmt: skip
    if offline and take_waiting_evidence(data_dir):
        return "journaled"
    return f"left for the running gateway (command {command.command_id})"


def run_gate(
    data_dir: Path,
    profile: Profile | None,
    gate_file: Path | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> tuple[Verdict, bool]:
    """Evaluate the gate on `data_dir`: (verdict, whether no gateway was running)."""
    offline = take_waiting_evidence(data_dir)
    found = read_journal(data_dir)
    if profile is not None:
        current = current_from_profile(profile, found)
        gate_file = gate_file or (Path(profile.gate) if profile.gate else None)
    else:
        current = current_from_journal(found)
    rules = load_gate_file(gate_file) if gate_file is not None else GateFile()
    return evaluate(found, current, rules, clock.now_ns()), offline


def gate_passed(data_dir: Path, release: ReleaseRecorded) -> EvidenceRecorded | None:
    """The latest passing verdict of the gate for exactly this release, if any."""
    if not (data_dir / "journal.sqlite").exists():
        return None
    adapter = f"{release.adapter_module} {release.adapter_version}"
    found = read_journal(data_dir)
    passing = [
        e
        for _, e in found.of_kind("gate")
        if e.passed and e.config_id == release.config_id and e.adapter == adapter
    ]
    return passing[-1] if passing else None
