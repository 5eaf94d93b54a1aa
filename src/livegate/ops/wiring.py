"""A gateway built from a profile: its adapter, journal, instruments and settings."""

from __future__ import annotations

from pathlib import Path

import msgspec

from livegate.broker.adapter import BrokerAdapter
from livegate.broker.fix import FixAdapter, FixSessionConfig
from livegate.broker.paper import PaperAdapter, PaperConfig
from livegate.broker.sim import SimAdapter
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, SQLiteStore, Store
from livegate.model.instrument import InstrumentRegistry
from livegate.model.samples import demo_instruments
from livegate.ops.config_files import load_config, release_record
from livegate.ops.profiles import Profile, ProfileError, resolve_api_key, resolve_reference
from livegate.risk.engine import RiskEngine
from livegate.risk.limits import RiskFile
from livegate.risk.rollout import RolloutGuard


def adapter_type(profile: Profile) -> type:
    """The class `build_adapter` would build, without building it (no credentials, no
    session files opened, no broker code run): what names a release."""
    if profile.broker.startswith("akquant:"):
        from livegate.broker.akquant.adapter import AkquantBroker

        return AkquantBroker
    return {"paper": PaperAdapter, "sim": SimAdapter, "fix": FixAdapter}[profile.broker]


def build_adapter(profile: Profile, environ: dict[str, str] | None = None) -> BrokerAdapter:
    data = Path(profile.data_dir)
    key = resolve_api_key(profile, environ)  # checks the key's environment first
    if profile.broker.startswith("akquant:"):
        return _akquant_broker(profile)
    if profile.broker == "paper":
        return PaperAdapter(data / "paper.sqlite", PaperConfig())
    if profile.broker == "sim":
        if not profile.port:
            raise ProfileError(f"profile {profile.name!r}: the sim broker needs a port")
        assert key is not None
        return SimAdapter(profile.host, profile.port, key, profile.environment)
    if not (profile.port and profile.sender_comp_id and profile.target_comp_id):
        raise ProfileError(
            f"profile {profile.name!r}: a FIX profile needs port, sender_comp_id, target_comp_id"
        )
    config = FixSessionConfig(
        profile.host,
        profile.port,
        profile.sender_comp_id,
        profile.target_comp_id,
        data / "fix-session.sqlite",
        begin_string=profile.begin_string,
    )
    return FixAdapter(config)


def _akquant_broker(profile: Profile) -> BrokerAdapter:
    """An akquant TraderGateway from `akquant:package.module:factory` (the akquant extra)."""
    try:
        from livegate.broker.akquant.adapter import AkquantBroker, load_trader
    except ImportError as exc:
        raise ProfileError(
            f"profile {profile.name!r}: {profile.broker} needs akquant:"
            " pip install 'livegate[akquant]'"
        ) from exc
    try:
        return AkquantBroker(load_trader(profile.broker))
    except (ImportError, AttributeError, ValueError) as exc:
        raise ProfileError(f"profile {profile.name!r}: {profile.broker}: {exc}") from None


def build_store(profile: Profile, environ: dict[str, str] | None = None) -> Store:
    """SQLite in the data folder, or the profile's PostgreSQL journal under an account lease
    (its `connect` is the caller's: serve takes the lease, or waits for it as a standby)."""
    if not profile.journal:
        return SQLiteStore(
            Path(profile.data_dir) / "journal.sqlite", archive_after_days=profile.archive_after_days
        )
    try:
        from livegate.journal.lease import Lease
        from livegate.journal.postgres import PostgresStore
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ProfileError(
            f"profile {profile.name!r}: a PostgreSQL journal needs pip install"
            f" 'livegate[postgres]' ({exc})"
        ) from None
    connect: dict[str, str] = {}
    if profile.journal_password:
        connect["password"] = resolve_reference(
            profile, profile.journal_password, "journal_password", environ
        )
    lease = Lease(profile.journal, profile.account, ttl=profile.lease_ttl, connect=connect)
    return PostgresStore(profile.journal, profile.account, lease, connect=connect)


def build_gateway(profile: Profile, environ: dict[str, str] | None = None) -> Gateway:
    """The profile's gateway, with its risk limits, sessions and rollout stages loaded.

    Every file is checked before anything connects; its release record (files,
    contents, versions) is set on the gateway, which journals it when it starts.
    """
    loaded = load_config(profile)  # a bad file refuses here, with file:line
    adapter = build_adapter(profile, environ)
    data = Path(profile.data_dir)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfileError(
            f"profile {profile.name!r}: cannot use {data} as the data folder: {exc.strerror}"
        ) from None
    instruments = (
        InstrumentRegistry(loaded.instruments)
        if loaded.instruments is not None
        else demo_instruments()  # paper and sim profiles without reference data
    )
    overrides = msgspec.to_builtins(profile.gateway)  # only what the profile sets
    try:
        config = GatewayConfig(account=profile.account, **overrides)
    except ValueError as exc:
        raise ProfileError(f"profile {profile.name!r}: {exc}") from None
    risk_file = loaded.risk or RiskFile()
    risk = RiskEngine(
        risk_file.for_account(profile.account),
        instruments,
        loaded.sessions,
        RolloutGuard(loaded.rollout) if loaded.rollout is not None else None,
    )
    gateway = Gateway(adapter, Journal(build_store(profile, environ)), instruments, config,
                      risk=risk)  # fmt: skip
    gateway.release = release_record(adapter, loaded.files, profile.name)
    return gateway
