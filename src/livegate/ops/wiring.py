"""A gateway built from a profile: its adapter, journal, instruments and settings."""

from __future__ import annotations

from pathlib import Path

import msgspec

from livegate.broker.adapter import BrokerAdapter
from livegate.broker.fix import FixAdapter, FixSessionConfig
from livegate.broker.paper import PaperAdapter, PaperConfig
from livegate.broker.sim import SimAdapter
from livegate.engine import Gateway, GatewayConfig
from livegate.journal import Journal, SQLiteStore
from livegate.model.instrument import InstrumentRegistry
from livegate.model.samples import demo_instruments
from livegate.ops.profiles import Profile, ProfileError, resolve_api_key
from livegate.risk.reference import load_instruments


def build_adapter(profile: Profile, environ: dict[str, str] | None = None) -> BrokerAdapter:
    data = Path(profile.data_dir)
    key = resolve_api_key(profile, environ)  # checks the key's environment first
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


def build_gateway(profile: Profile, environ: dict[str, str] | None = None) -> Gateway:
    adapter = build_adapter(profile, environ)
    data = Path(profile.data_dir)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfileError(
            f"profile {profile.name!r}: cannot use {data} as the data folder: {exc.strerror}"
        ) from None
    instruments = (
        InstrumentRegistry(load_instruments(Path(profile.reference)))
        if profile.reference
        else demo_instruments()  # paper and sim profiles without reference data
    )
    overrides = msgspec.to_builtins(profile.gateway)  # only what the profile sets
    try:
        config = GatewayConfig(account=profile.account, **overrides)
    except ValueError as exc:
        raise ProfileError(f"profile {profile.name!r}: {exc}") from None
    return Gateway(adapter, Journal(SQLiteStore(data / "journal.sqlite")), instruments, config)
