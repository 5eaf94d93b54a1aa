"""Environment profiles, credentials that carry their environment, secrets that never leak."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from livegate.broker.errors import BrokerAuthError
from livegate.broker.sim import SimAdapter
from livegate.cli.main import app
from livegate.model import OrderRequest, OrderStatus
from livegate.model.secret import Secret
from livegate.observe.logs import OrderLog, configure_json_logging
from livegate.ops.profiles import ProfileError, load_profiles, resolve_api_key
from livegate.ops.service import GatewayService, ServiceConfig
from livegate.ops.wiring import build_gateway
from livegate.sim import SimBroker

SIM_KEY = "lg_sim_0f3a9c7e51d24b86a1e0"
LIVE_KEY = "lg_live_7c1d0e9b3a5f42c8e6d1"


def write_profiles(tmp_path: Path, port: int = 7001, extra: str = "") -> Path:
    path = tmp_path / "livegate.toml"
    path.write_text(
        f"""
[profiles.paper]
environment = "paper"
broker = "paper"
data_dir = "data/paper"

[profiles.sim]
environment = "sim"
broker = "sim"
port = {port}
api_key = "env:LG_TEST_SIM_KEY"
data_dir = "data/sim"
gateway = {{ heartbeat_interval = 0.2, reconnect_delay = 0.05, auth_retry_delay = 0.2 }}

[profiles.live]
environment = "live"
broker = "sim"
port = {port}
api_key = "env:LG_TEST_LIVE_KEY"
data_dir = "data/live"
reference = "instruments.csv"
{extra}
"""
    )
    (tmp_path / "instruments.csv").write_text("symbol,tick_size\nAAPL,0.01\n")
    return path


def test_profiles_load_and_refuse_unknown_keys_and_environments(tmp_path: Path) -> None:
    profiles = load_profiles(write_profiles(tmp_path))
    assert set(profiles) == {"paper", "sim", "live"}
    assert profiles["sim"].gateway.heartbeat_interval == 0.2
    bad = tmp_path / "bad.toml"
    bad.write_text('[profiles.x]\nenvironment = "prod"\nbroker = "paper"\ndata_dir = "d"\n')
    with pytest.raises(ProfileError, match="environment 'prod'"):
        load_profiles(bad)
    bad.write_text(
        '[profiles.x]\nenvironment = "paper"\nbroker = "paper"\ndata_dir = "d"\nretries = 3\n'
    )
    with pytest.raises(ProfileError, match="retries"):
        load_profiles(bad)


def test_live_with_a_sim_key_or_any_mismatch_refuses_to_start(tmp_path: Path) -> None:
    profiles = load_profiles(write_profiles(tmp_path))
    env = {"LG_TEST_SIM_KEY": SIM_KEY, "LG_TEST_LIVE_KEY": SIM_KEY}  # live given a sim key
    with pytest.raises(ProfileError) as refused:
        resolve_api_key(profiles["live"], env)
    message = str(refused.value)
    assert "'live'" in message and "'sim' key" in message and "refusing to start" in message
    assert SIM_KEY not in message and "LG_TEST_LIVE_KEY" in message
    env["LG_TEST_SIM_KEY"] = LIVE_KEY  # and the other way round
    with pytest.raises(ProfileError, match="'live' key"):
        resolve_api_key(profiles["sim"], env)
    with pytest.raises(ProfileError, match="does not say its environment"):
        resolve_api_key(profiles["sim"], {"LG_TEST_SIM_KEY": "0f3a9c7e51d24b86"})
    with pytest.raises(ProfileError, match="is not set"):
        resolve_api_key(profiles["sim"], {})
    key = resolve_api_key(profiles["sim"], {"LG_TEST_SIM_KEY": SIM_KEY})
    assert isinstance(key, Secret) and key.reveal() == SIM_KEY
    assert SIM_KEY not in f"{key} {key!r} {[key]}"


def test_the_cli_refuses_a_mismatched_profile_without_printing_the_key(tmp_path: Path) -> None:
    config = write_profiles(tmp_path)
    env = {**os.environ, "LG_TEST_LIVE_KEY": SIM_KEY}
    result = CliRunner().invoke(
        app, ["serve", "--config", str(config), "--profile", "live"], env=env
    )
    assert result.exit_code == 2
    assert "refusing to start" in result.output and SIM_KEY not in result.output


def test_secrets_files_must_be_private_and_name_their_section(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[live]\napi_key = "{LIVE_KEY}"\n')
    config = (
        write_profiles(tmp_path)
        .read_text()
        .replace('api_key = "env:LG_TEST_LIVE_KEY"', f'api_key = "file:{secrets}:live"')
    )
    (tmp_path / "livegate.toml").write_text(config)
    profile = load_profiles(tmp_path / "livegate.toml")["live"]
    secrets.chmod(0o644)
    with pytest.raises(ProfileError, match="readable by others"):
        resolve_api_key(profile, {})
    secrets.chmod(0o600)
    assert resolve_api_key(profile, {}) == Secret(LIVE_KEY)


def test_a_broker_serving_another_environment_is_refused(tmp_path: Path) -> None:
    async def run() -> None:
        broker = SimBroker(tmp_path / "sim", {LIVE_KEY}, environment="sim")
        await broker.start()
        try:
            # The key is accepted, but this broker is not the live one.
            adapter = SimAdapter("127.0.0.1", broker.port, Secret(LIVE_KEY), environment="live")
            await adapter.connect()
            with pytest.raises(BrokerAuthError, match="wrong environment"):
                await adapter.authenticate()
        finally:
            await broker.stop()

    asyncio.run(run())


def test_no_secret_in_logs_journal_snapshot_status_or_alerts_after_a_run(tmp_path: Path) -> None:
    """A sim run with a configured key, a refused logon on the way: then scan every file."""

    async def run() -> None:
        broker = SimBroker(tmp_path / "sim", {SIM_KEY})
        await broker.start()
        profile = load_profiles(write_profiles(tmp_path, broker.port))["sim"]
        gateway = build_gateway(profile, {"LG_TEST_SIM_KEY": SIM_KEY})
        service = GatewayService(
            gateway, ServiceConfig(Path(profile.data_dir), "sim", None, profile=profile)
        )
        service.alerts.config.interval = 0.05
        gateway.order_log = OrderLog(
            "sim", "default", (Path(profile.data_dir) / "o.log").open("ab")
        )

        async def strategy(g) -> None:  # type: ignore[no-untyped-def]
            await broker.control("quote", symbol="AAPL", bid="99.99", ask="100.01")
            for i in range(20):
                await g.submit_order(
                    OrderRequest(symbol="AAPL", side="BUY", quantity=1, order_type="MARKET",
                                 client_order_id=f"s-{i}")
                )  # fmt: skip
            await broker.control("fail_auth", on=True)  # refused credentials: errors, alerts
            await asyncio.sleep(0.6)
            await broker.control("fail_auth", on=False)
            for _ in range(100):
                if g.ready:
                    break
                await asyncio.sleep(0.05)
            service.request_stop()

        await service.run(strategy)
        assert gateway.order("s-0").status is OrderStatus.FILLED
        assert any(a.key == "auth-failure" for a in gateway.book.alerts)
        await broker.stop()

    logs = io.StringIO()
    configure_json_logging(logs, logging.DEBUG)
    try:
        asyncio.run(run())
    finally:
        logging.getLogger().handlers.clear()
    text = logs.getvalue()
    assert "authentication failed" in text or "BrokerAuthError" in text  # the errors were logged
    needle = SIM_KEY.encode()
    scanned = 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), f"the key leaked into {path}"
            scanned += 1
    assert scanned >= 6  # journal, order log, snapshot, status, alerts, broker book...
    # The release's config snapshot was among them: the profiles file, by reference only.
    profiles_copy = next((tmp_path / "data/sim/snapshots").glob("*/profiles.toml"))
    assert "env:LG_TEST_SIM_KEY" in profiles_copy.read_text()
    assert SIM_KEY not in text
    snapshot = json.loads((tmp_path / "data/sim/config-snapshot.json").read_text())
    assert snapshot["profile"]["api_key"] == "env:LG_TEST_SIM_KEY"
    status = json.loads((tmp_path / "data/sim/service.json").read_text())
    assert {c["name"] for c in status["health"]} >= {"connect", "heartbeat", "account"}
