"""The files a profile names, loaded and checked before anything starts, and recorded.

A profile names its risk limits, reference data, session hours and
rollout stages. `serve` loads every one of them first; a bad file refuses
the start with `file:line` and why. What was loaded is kept with each
file's content and hash, so every start can journal a release record
(`ReleaseRecorded`) and `livegate config` can show, compare and restore
exactly what ran. The profiles file holds credential references only
(`env:VAR`, `file:PATH:SECTION`), never a key: nothing secret is recorded.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from livegate import __version__
from livegate.model.events import ConfigFile, ReleaseRecorded
from livegate.model.instrument import Instrument
from livegate.ops.profiles import Profile, ProfileError
from livegate.risk.limits import RiskConfigError, RiskFile, load_risk_file, load_sessions_file
from livegate.risk.reference import ReferenceDataError, load_instruments
from livegate.risk.rollout import RolloutError, RolloutPlan, load_rollout
from livegate.risk.sessions import SessionGuard

ROLES = ("profiles", "risk", "reference", "sessions", "rollout")


@dataclass
class LoadedConfig:
    """What a profile's files hold; None where the profile names no such file."""

    risk: RiskFile | None = None
    instruments: list[Instrument] | None = None
    sessions: SessionGuard | None = None
    rollout: RolloutPlan | None = None
    files: list[ConfigFile] = field(default_factory=list)

    @property
    def config_id(self) -> str:
        return config_id(self.files)

    def describe(self) -> dict[str, str]:
        """role -> path, for `livegate status`."""
        return {f.role: f.path for f in self.files}


def config_id(files: list[ConfigFile] | tuple[ConfigFile, ...]) -> str:
    """The same contents give the same id, wherever the files live."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.role):
        digest.update(f"{f.role}\0{f.sha256}\0".encode())
    return digest.hexdigest()[:12]


def read_config_file(role: str, path: Path) -> ConfigFile:
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read the {role} file: {exc}") from None
    digest = hashlib.sha256(content.encode()).hexdigest()
    return ConfigFile(role, str(path), digest, content)


def load_config(profile: Profile) -> LoadedConfig:
    """Every file the profile names, checked; ProfileError with file:line on the first bad one."""
    loaded = LoadedConfig()
    if profile.source:
        loaded.files.append(read_config_file("profiles", Path(profile.source)))
    try:
        if profile.risk:
            loaded.risk = load_risk_file(Path(profile.risk))
            loaded.sessions = loaded.risk.session_guard()
        if profile.sessions:
            loaded.sessions = load_sessions_file(Path(profile.sessions)).guard()
        if profile.reference:
            loaded.instruments = load_instruments(Path(profile.reference))
        if profile.rollout:
            loaded.rollout = load_rollout(Path(profile.rollout))
    except (RiskConfigError, ReferenceDataError, RolloutError) as exc:
        raise ProfileError(f"profile {profile.name!r}: {exc}") from None
    except OSError as exc:
        raise ProfileError(f"profile {profile.name!r}: {exc}") from None
    for role in ("risk", "reference", "sessions", "rollout"):
        name = getattr(profile, role)
        if name:
            loaded.files.append(read_config_file(role, Path(name)))
    return loaded


def release_record(
    adapter: object, files: list[ConfigFile], profile_name: str = ""
) -> ReleaseRecorded:
    """What this start runs: versions, and the config files' contents. `adapter` may be
    the adapter's class: what a release will run, known without building it."""
    module = _module_of(adapter)
    return ReleaseRecorded(
        config_id(files),
        __version__,
        f"{platform.python_implementation()} {sys.version.split()[0]}",
        module,
        adapter_version(adapter),
        profile_name,
        tuple(files),
        time.time_ns(),
    )


def adapter_version(adapter: object) -> str:
    """The adapter's own `version`, else its distribution's, else livegate's (a shipped one)."""
    given = getattr(adapter, "version", None)
    if isinstance(given, str) and given:
        return given
    top = _module_of(adapter).split(".")[0]
    if top == "livegate":
        return __version__
    try:
        return metadata.version(top)
    except metadata.PackageNotFoundError:
        return "unknown"


def _module_of(adapter: object) -> str:
    return adapter.__module__ if isinstance(adapter, type) else type(adapter).__module__
