"""Environment profiles (paper / sim / live) and the credentials each one trades with.

A profile file is TOML; each `[profiles.NAME]` says which environment it
trades in, which broker adapter to use, where its data lives, and where
its credentials come from. Credentials are never in the profile file
itself. `api_key` is a reference: `env:VARIABLE`, or
`file:PATH:SECTION` for a TOML secrets file with `api_key` in `[SECTION]`.

Credentials carry their environment. A key starts `lg_<environment>_`
(as many brokers mark live and test keys), so a paper or sim key
configured for the live profile, or any mismatch, refuses to start with a
message that names the profile and the source but never the key. The key
is a `Secret` from the moment it is read: it is masked when printed and
never encoded into the journal, logs or snapshots.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from livegate.model.secret import Secret

ENVIRONMENTS = ("paper", "sim", "live")
FILE_KEYS = (
    "reference",
    "risk",
    "sessions",
    "rollout",
    "gate",
)  # paths, relative to the profiles file
BROKERS = ("paper", "sim", "fix")


class ProfileError(Exception):
    """A profile cannot be used as configured; the message says why (never a secret)."""


# A duration in seconds: positive and finite (NaN and inf fail `gt` / `le`),
# at most a day. A negative place_timeout would turn every order UNKNOWN.
Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
PerSecond = Annotated[float, msgspec.Meta(gt=0, le=1_000_000)]


class GatewaySettings(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    place_timeout: Seconds | None = None
    cancel_timeout: Seconds | None = None
    heartbeat_interval: Seconds | None = None
    heartbeat_timeout: Seconds | None = None
    reconnect_delay: Seconds | None = None
    reconnect_max_delay: Seconds | None = None
    auth_retry_delay: Seconds | None = None
    max_clock_skew: Seconds | None = None
    broker_rate_limit: PerSecond | None = None
    broker_rate_burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    checkpoint_every: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)] | None = None
    retain_hours: Annotated[float, msgspec.Meta(ge=0, le=24 * 366)] | None = None


class ConsoleUser(msgspec.Struct, forbid_unknown_fields=True):
    """A console login: its role, and where its password hash is (never the hash itself)."""

    role: Literal["viewer", "operator"]
    password: str  # a reference: env:VAR or file:PATH:SECTION (with `password_hash`)


class ConsoleSettings(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    users: dict[str, ConsoleUser] = msgspec.field(default_factory=dict)
    port: Annotated[int, msgspec.Meta(ge=0, le=65_535)] = 8088
    session_minutes: Annotated[int, msgspec.Meta(ge=1, le=7 * 24 * 60)] = 480


class Profile(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    environment: str
    broker: str
    data_dir: str
    account: str = "default"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65_535)] = 0
    api_key: str = ""  # a reference: env:VAR or file:PATH:SECTION
    reference: str = ""  # instrument reference file (CSV/TOML); the demo's for paper and sim
    risk: str = ""  # risk limits file (TOML, docs/risk.md); none: only the trading state
    sessions: str = ""  # session hours file (TOML); overrides the risk file's [sessions]
    rollout: str = ""  # rollout stages file (TOML, docs/release.md)
    gate: str = ""  # go-live gate thresholds (TOML, docs/go-live.md); none: the defaults
    calendar: str = ""  # the exchange calendar the day follows (XSHG, XNYS, ...): EOD, the gate
    webhook: str = ""  # alerts POSTed here: a URL, or env:VAR holding one (it may carry a token)
    # The journal: "" for SQLite in data_dir; postgresql://user@host:port/db to share one
    # database (its password by reference in journal_password, never in the URL).
    journal: str = ""
    journal_password: str = ""
    lease_ttl: Seconds = 5.0  # a PostgreSQL journal's account lease (docs/deployment.md)
    # SQLite: at each start, days older than this leave the live journal for archive files
    # that trace and every history still read (docs/deployment.md); 0: never.
    archive_after_days: Annotated[int, msgspec.Meta(ge=0, le=3660)] = 0
    # FIX sessions
    sender_comp_id: str = ""
    target_comp_id: str = ""
    begin_string: str = "FIX.4.2"
    gateway: GatewaySettings = msgspec.field(default_factory=GatewaySettings)
    console: ConsoleSettings = msgspec.field(default_factory=ConsoleSettings)
    name: str = ""  # filled from the table's name
    source: str = ""  # the profiles file it came from, filled when loaded


class _File(msgspec.Struct, forbid_unknown_fields=True):
    profiles: dict[str, Profile]


def load_profiles(path: Path) -> dict[str, Profile]:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path}: {exc}") from exc
    try:
        parsed = msgspec.convert(raw, _File)
    except msgspec.ValidationError as exc:
        raise ProfileError(f"{path}: {_which_profile(raw) or exc}") from exc
    profiles: dict[str, Profile] = {}
    for name, profile in parsed.profiles.items():
        profile.name = name
        if profile.environment not in ENVIRONMENTS:
            raise ProfileError(
                f"{path}: profile {name!r}: environment {profile.environment!r}"
                f" is not one of {', '.join(ENVIRONMENTS)}"
            )
        if profile.broker not in BROKERS and not profile.broker.startswith("akquant:"):
            raise ProfileError(
                f"{path}: profile {name!r}: broker {profile.broker!r}"
                f" is not one of {', '.join(BROKERS)} or akquant:package.module:factory"
            )
        base = path.parent
        profile.source = str(path.resolve())
        profile.data_dir = str((base / profile.data_dir).resolve())
        for key in FILE_KEYS:
            if getattr(profile, key):
                setattr(profile, key, str((base / getattr(profile, key)).resolve()))
        if profile.calendar:
            from livegate.risk.sessions import known_calendar

            if not known_calendar(profile.calendar):
                raise ProfileError(
                    f"{path}: profile {name!r}: calendar {profile.calendar!r} is not an"
                    " exchange_calendars code (XSHG, XNYS, XHKG, ...)"
                )
        if profile.journal:
            _check_journal_url(path, profile)
            if profile.archive_after_days:
                raise ProfileError(
                    f"{path}: profile {name!r}: archive_after_days is for the SQLite journal;"
                    " a PostgreSQL journal is kept with the database's own tools"
                )
        if not profile.reference and profile.environment == "live":
            raise ProfileError(f"{path}: profile {name!r}: a live profile needs its reference file")
        profiles[name] = profile
    return profiles


def _check_journal_url(path: Path, profile: Profile) -> None:
    from urllib.parse import urlsplit

    where = f"{path}: profile {profile.name!r}: journal"
    try:
        url = urlsplit(profile.journal)
        url.port  # noqa: B018  (raises on a port that is not one)
    except ValueError as exc:
        raise ProfileError(f"{where} is not a URL ({exc})") from None
    if url.scheme not in ("postgresql", "postgres"):
        raise ProfileError(f"{where} must be postgresql://user@host:port/database (or left out)")
    if url.password is not None:
        raise ProfileError(
            f"{where} has a password in it: put it behind journal_password = env:VAR or"
            " file:PATH:SECTION"
        )


def _which_profile(raw: dict[str, Any]) -> str:
    """msgspec elides dict keys from its error paths: name the profile and its key."""
    profiles = raw.get("profiles")
    if not isinstance(profiles, dict):
        return ""
    for name, table in profiles.items():
        try:
            msgspec.convert(table, Profile)
        except msgspec.ValidationError as exc:
            text = str(exc)
            message, _, where = text.partition(" - at `$.")
            key = where.rstrip("`")
            return f"profile {name!r}: {key}: {message}" if key else f"profile {name!r}: {text}"
    return ""


def key_environment(key: str) -> str | None:
    """The environment a key was issued for, from its `lg_<environment>_` prefix."""
    parts = key.split("_", 2)
    if len(parts) == 3 and parts[0] == "lg" and parts[1] in ENVIRONMENTS and parts[2]:
        return parts[1]
    return None


def resolve_api_key(profile: Profile, environ: dict[str, str] | None = None) -> Secret | None:
    """The profile's key, checked against its environment. None for a paper profile without one."""
    reference = profile.api_key
    if not reference:
        if profile.broker == "sim":
            raise ProfileError(f"profile {profile.name!r}: the sim broker needs an api_key")
        return None
    value = resolve_reference(profile, reference, "api_key", environ)
    issued_for = key_environment(value)
    if issued_for is None:
        raise ProfileError(
            f"profile {profile.name!r}: the key from {reference} does not say its environment"
            " (keys start lg_<paper|sim|live>_)"
        )
    if issued_for != profile.environment:
        raise ProfileError(
            f"profile {profile.name!r} trades in {profile.environment!r} but the key from"
            f" {reference} is a {issued_for!r} key: refusing to start"
        )
    return Secret(value)


def resolve_reference(
    profile: Profile, reference: str, field: str, environ: dict[str, str] | None = None
) -> str:
    """The value a credential reference names: `env:VARIABLE`, or `file:PATH:SECTION` for
    `field` in `[SECTION]` of a TOML secrets file only its owner can read."""
    kind, _, rest = reference.partition(":")
    if kind == "env":
        value = (environ if environ is not None else dict(os.environ)).get(rest, "")
        if not value:
            raise ProfileError(f"profile {profile.name!r}: environment variable {rest} is not set")
        return value
    if kind == "file":
        return _from_secrets_file(profile, rest, field)
    raise ProfileError(
        f"profile {profile.name!r}: {field} must be env:VARIABLE or file:PATH:SECTION,"
        " never the value itself"
    )


def _from_secrets_file(profile: Profile, spec: str, field: str) -> str:
    path_text, _, section = spec.rpartition(":")
    if not path_text or not section:
        raise ProfileError(f"profile {profile.name!r}: file credentials need file:PATH:SECTION")
    path = Path(path_text)
    try:
        mode = path.stat().st_mode
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"profile {profile.name!r}: secrets file {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ProfileError(
            f"profile {profile.name!r}: secrets file {path} is readable by others; chmod 600 {path}"
        )
    value = data.get(section, {}).get(field, "")
    if not isinstance(value, str) or not value:
        raise ProfileError(f"profile {profile.name!r}: no {field} in [{section}] of {path}")
    return value


def resolve_webhook(profile: Profile, environ: dict[str, str] | None = None) -> str | None:
    """The profile's alert webhook URL, from the profile or the variable it names."""
    reference = profile.webhook
    if not reference:
        return None
    if reference.startswith("env:"):
        value = (environ if environ is not None else dict(os.environ)).get(reference[4:], "")
        if not value:
            raise ProfileError(
                f"profile {profile.name!r}: webhook variable {reference[4:]} is not set"
            )
        reference = value
    if not reference.startswith(("http://", "https://")):
        raise ProfileError(f"profile {profile.name!r}: webhook must be an http(s) URL or env:VAR")
    return reference


def snapshot(profile: Profile) -> dict[str, Any]:
    """The profile as configured, for a config snapshot: references, never secret values."""
    data: dict[str, Any] = msgspec.to_builtins(profile)
    return data
