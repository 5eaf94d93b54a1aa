"""Config snapshots: what each release ran, side by side, and the way back to it.

The journal's release records (`ReleaseRecorded`, one per `serve` start)
are the record; a snapshot is one config id's files, also kept as plain
files in `DATA_DIR/snapshots/ID/` for a person to read. A rollback writes
a snapshot's files back where they were, after keeping the current ones as
a snapshot of their own, and says how to restart on them (and which
livegate to install when the snapshot ran another version).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from livegate import __version__
from livegate.engine.control import atomic_write
from livegate.journal.sqlite import events_of_kinds
from livegate.model.events import ConfigFile, ReleaseRecorded
from livegate.ops.config_files import config_id

SNAPSHOTS = "snapshots"
JOURNAL = "journal.sqlite"


class SnapshotError(ValueError):
    """No such snapshot, or it cannot be restored; the message says which and why."""


def file_name(config: ConfigFile) -> str:
    return config.role + (Path(config.path).suffix or ".txt")


def write_snapshot(data_dir: Path, record: ReleaseRecorded, note: str = "") -> Path:
    """The record's files under snapshots/ID (content-addressed: written once)."""
    folder = data_dir / SNAPSHOTS / record.config_id
    manifest = {
        "config_id": record.config_id,
        "livegate_version": record.livegate_version,
        "python": record.python,
        "adapter_module": record.adapter_module,
        "adapter_version": record.adapter_version,
        "profile_name": record.profile_name,
        "files": [{"role": f.role, "path": f.path, "sha256": f.sha256} for f in record.files],
        "note": note,
    }
    if (folder / "manifest.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for config in record.files:
        atomic_write(folder / file_name(config), config.content.encode())
    atomic_write(folder / "manifest.json", json.dumps(manifest, indent=2).encode())
    return folder


@dataclass
class Release:
    """One config id as the journal knows it: when it first and last started."""

    record: ReleaseRecorded
    first_ns: int
    last_ns: int
    starts: int


def releases(data_dir: Path) -> list[Release]:
    """Every config this data folder ran, oldest first."""
    records = events_of_kinds(data_dir / JOURNAL, "release")
    return group_releases(r for r in records if isinstance(r, ReleaseRecorded))


def group_releases(records: Iterable[ReleaseRecorded]) -> list[Release]:
    """Release records (in journal order) by config id: first and last start, how many."""
    found: dict[str, Release] = {}
    for event in records:
        known = found.get(event.config_id)
        if known is None:
            found[event.config_id] = Release(event, event.ts_ns, event.ts_ns, 1)
        else:
            known.record, known.last_ns = event, event.ts_ns
            known.starts += 1
    return list(found.values())


def find_release(data_dir: Path, wanted: str) -> Release:
    """By id or a unique prefix of it; `latest` and `previous` by start order."""
    known = releases(data_dir)
    if not known:
        raise SnapshotError(f"{data_dir}: no release recorded yet (start the gateway with serve)")
    ordered = sorted(known, key=lambda r: r.last_ns)
    if wanted in ("latest", "previous"):
        index = -1 if wanted == "latest" else -2
        if len(ordered) < -index:
            raise SnapshotError(f"no {wanted} release: {len(ordered)} recorded")
        return ordered[index]
    matches = [r for r in known if r.record.config_id.startswith(wanted)]
    if len(matches) != 1:
        ids = ", ".join(r.record.config_id for r in ordered)
        what = "is ambiguous" if matches else "matches no release"
        raise SnapshotError(f"{wanted!r} {what}; known: {ids}")
    return matches[0]


def diff(a: ReleaseRecorded, b: ReleaseRecorded) -> str:
    """A unified diff per role, and the version lines that differ."""
    out: list[str] = []
    for name in ("livegate_version", "adapter_module", "adapter_version", "python"):
        left, right = getattr(a, name), getattr(b, name)
        if left != right:
            out.append(f"{name}: {left} -> {right}\n")
    files_a = {f.role: f for f in a.files}
    files_b = {f.role: f for f in b.files}
    for role in sorted(files_a.keys() | files_b.keys()):
        left_file, right_file = files_a.get(role), files_b.get(role)
        left = left_file.content.splitlines(keepends=True) if left_file else []
        right = right_file.content.splitlines(keepends=True) if right_file else []
        out += difflib.unified_diff(
            left,
            right,
            f"{a.config_id}/{role} ({left_file.path if left_file else 'absent'})",
            f"{b.config_id}/{role} ({right_file.path if right_file else 'absent'})",
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


@dataclass
class Rollback:
    restored: ReleaseRecorded
    saved_as: str  # the config id the files had before
    written: list[str] = field(default_factory=list)
    restart: str = ""
    install: str = ""  # a pip command when the snapshot ran another livegate


def rollback(data_dir: Path, wanted: str, note: str = "") -> Rollback:
    """Write a release's files back where they were; keep the current ones first.
    `note` (who asked and why) is kept with the snapshot of the files replaced."""
    target = find_release(data_dir, wanted).record
    current: list[ConfigFile] = []
    for config in target.files:
        path = Path(config.path)
        if path.exists():
            content = path.read_text(encoding="utf-8")
            digest = hashlib.sha256(content.encode()).hexdigest()
            current.append(ConfigFile(config.role, config.path, digest, content))
    saved = ReleaseRecorded(
        config_id(current), __version__, "", "", "", target.profile_name, tuple(current), 0
    )
    before = f"the files as they were before rollback to {wanted}"
    write_snapshot(data_dir, saved, note=f"{before} ({note})" if note else before)
    result = Rollback(target, saved.config_id)
    for config in target.files:
        path = Path(config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, config.content.encode())
        result.written.append(str(path))
    result.restart = restart_command(target, data_dir)
    if target.livegate_version != __version__:
        result.install = (
            f"this snapshot ran livegate {target.livegate_version} (installed: {__version__}):"
            f" pip install 'livegate=={target.livegate_version}'"
        )
    return result


def restart_command(record: ReleaseRecorded, data_dir: Path) -> str:
    profiles = next((f.path for f in record.files if f.role == "profiles"), None)
    if profiles is None or not record.profile_name:
        return f"livegate serve --dir {shlex.quote(str(data_dir))}"
    return (
        f"livegate serve --config {shlex.quote(profiles)}"
        f" --profile {shlex.quote(record.profile_name)}"
    )
