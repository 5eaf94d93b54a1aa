"""`livegate gate`: each failing condition built from real runs, and the passing case.

The passing desk trades a whole Shanghai session, lunch included, through a
sim broker on a clock compressed 400 times (about a minute), exercises the
kill switch after the close, is certified and passes its rollback drill:
the gate says PASS. Each failing case starts from a copy of that desk (or
from a day of its own) and does one real thing wrong.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from livegate.broker.sim import SimAdapter
from livegate.drills.sim_process import SimProcess
from livegate.drills.trading_day import DayPlan, run_trading_day
from livegate.engine import Gateway
from livegate.engine.control import write_evidence_command
from livegate.gate.rules import Verdict
from livegate.gate.run import run_gate
from livegate.journal import replay_file
from livegate.model.clock import ScaledClock
from livegate.model.diffs import DiffKind
from livegate.model.enums import OrderType, Side, TimeInForce
from livegate.model.events import (
    AlertChanged,
    EvidenceRecorded,
    GateOverridden,
    ReleaseRecorded,
)
from livegate.model.orders import OrderIntent
from livegate.model.samples import DEMO_START_PRICES
from livegate.model.secret import Secret
from livegate.ops.profiles import load_profiles
from livegate.ops.service import GatewayService, ServiceConfig
from livegate.ops.wiring import build_gateway
from livegate.recon import Reconciler, ReconConfig
from tests.test_operator_paths import NARROW

ROOT = Path(__file__).resolve().parent.parent
D = Decimal
DAY_NS = 86_400 * 10**9
WEBHOOK = "http://127.0.0.1:9/alerts"  # the discard port: a sink that is configured

PROFILES = """\
[profiles.sim]
environment = "sim"
broker = "sim"
port = {port}
api_key = "env:DESK_SIM_KEY"
data_dir = "data"
rollout = "rollout.toml"
calendar = "XSHG"
webhook = "{webhook}"
"""
ROLLOUT = """\
timezone = "Asia/Shanghai"

[stages.pilot]
symbols = ["AAPL"]
max_orders_per_day = 500
max_gross_exposure = "1000000"

[stages.full]
"""


@dataclass
class Desk:
    base: Path
    sim: SimProcess

    @property
    def env(self) -> dict[str, str]:
        return {"DESK_SIM_KEY": self.sim.key}

    def profile(self):  # type: ignore[no-untyped-def]
        return load_profiles(self.base / "profiles.toml")["sim"]

    def livegate(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = {**NARROW, **self.env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
        return subprocess.run(
            [sys.executable, "-m", "livegate", *args],
            cwd=self.base, env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def day(self, plan: DayPlan) -> None:
        asyncio.run(run_trading_day(self.profile(), plan, self.env))

    def gate(self, now_ns: int | None = None, gate_file: Path | None = None) -> Verdict:
        clock = ScaledClock(now_ns or time.time_ns())
        verdict, _ = run_gate(self.base / "data", self.profile(), gate_file, clock)
        return verdict


def open_desk(base: Path) -> Desk:
    base.mkdir(parents=True, exist_ok=True)
    (base / "sim").mkdir(exist_ok=True)
    sim = SimProcess(base / "sim", f"lg_sim_{secrets.token_hex(12)}")
    sim.start()

    async def quotes() -> None:
        for symbol, price in DEMO_START_PRICES.items():
            await sim.control("quote", symbol=symbol, bid=str(price - D("0.01")),
                              ask=str(price + D("0.01")))  # fmt: skip

    asyncio.run(quotes())
    (base / "profiles.toml").write_text(PROFILES.format(port=sim.port, webhook=WEBHOOK))
    (base / "rollout.toml").write_text(ROLLOUT)
    return Desk(base, sim)


def copy_desk(desk: Desk, base: Path) -> Desk:
    """The passing desk's files (its journal, config and reports), on the same broker."""
    shutil.copytree(desk.base, base, ignore=shutil.ignore_patterns("sim", "*.lock"))
    return Desk(base, desk.sim)


def exercise_the_kill_switch(desk: Desk) -> None:
    """On the running service: a safe-stop cancels the order the day left resting,
    then trading resumes."""
    env = {**NARROW, **desk.env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    serve = subprocess.Popen(
        [sys.executable, "-m", "livegate", "serve", "--config", "profiles.toml", "--profile",
         "sim", "--metrics-port", "0"],
        cwd=desk.base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        banner = [serve.stdout.readline(), serve.stdout.readline()]
        assert banner[1].startswith("ready:"), banner
        stop = desk.livegate("safe-stop", "--dir", "data", "--who", "ops", "--why", "drill")
        assert stop.returncode == 0 and "1 cancels sent, 0 orders still open" in stop.stdout, (
            stop.stdout + stop.stderr
        )
        resume = desk.livegate(
            "trading-state", "--dir", "data", "ACTIVE", "--who", "ops", "--why", "drill over"
        )
        assert resume.returncode == 0, resume.stderr
        # The alert engine (every second) may have raised P0 "halted": it resolves once it
        # sees ACTIVE; stop only when the service shows no open alert.
        time.sleep(2.5)
        deadline = time.monotonic() + 10
        while json.loads(desk.livegate("status", "--dir", "data", "--json").stdout)["open_alerts"]:
            assert time.monotonic() < deadline, "an alert stayed open"
            time.sleep(0.5)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=30)
    assert serve.returncode == 0


def criterion(verdict: Verdict, name: str):  # type: ignore[no-untyped-def]
    return next(c for c in verdict.criteria if c.name == name)


def failing(verdict: Verdict) -> list[str]:
    return [c.name for c in verdict.criteria if not c.passed]


@pytest.fixture(scope="module")
def passed_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """Each step of docs/go-live.md, by the command the page shows for it."""
    desk = open_desk(tmp_path_factory.mktemp("desk"))
    try:
        day = desk.livegate("drill", "trading-day", "--config", "profiles.toml", "--profile", "sim")
        assert day.returncode == 0, day.stdout + day.stderr
        assert "break 11:30-13:00 (XSHG) at 400x" in day.stdout, day.stdout
        print(day.stdout)
        certified = desk.livegate(
            "certify", "livegate.drills.certify.shipped:sim", "--config", "profiles.toml",
            "--profile", "sim", "--report", "certify",
        )  # fmt: skip
        assert certified.returncode == 0, certified.stdout + certified.stderr
        drill = desk.livegate("drill", "rollback", "--config", "profiles.toml", "--profile", "sim")
        assert drill.returncode == 0, drill.stdout + drill.stderr
        exercise_the_kill_switch(desk)
        yield desk
    finally:
        desk.sim.stop()


def test_a_compressed_day_certified_and_drilled_passes_the_gate(passed_desk: Desk) -> None:
    result = passed_desk.livegate(
        "gate", "data", "--config", "profiles.toml", "--profile", "sim", "--html", "gate.html"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "livegate gate PASS: data"
    assert [line for line in lines if line.startswith("[")] == [
        "[pass] certification", "[pass] trading days", "[pass] alerts", "[pass] rollback",
        "[pass] drills", "[pass] release controls",
    ]  # fmt: skip
    day = next(line for line in lines if "whole: " in line)
    # One line whatever the terminal's width (COLUMNS=40 here): lunch included.
    assert "09:30-15:00 Asia/Shanghai, break 11:30-13:00" in day and "clean" in day
    assert "safe-stop exercised" in result.stdout and "alerts reach a webhook" in result.stdout
    page = (passed_desk.base / "gate.html").read_text()
    assert 'id="verdict">PASS<' in page and page.count('data-passed="true"') == 6
    as_json = passed_desk.livegate("gate", "data", "--json")
    verdict = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and verdict["verdict"] == "PASS"
    assert verdict["recorded"] == "journaled"
    journaled = [
        e
        for e in _events(passed_desk.base / "data")
        if isinstance(e, EvidenceRecorded) and e.kind == "gate"
    ]
    assert len(journaled) == 2 and all(e.passed for e in journaled)
    assert journaled[-1].config_id == verdict["config_id"]
    recorded = json.loads(journaled[-1].detail)
    assert recorded["who"] and [c["passed"] for c in recorded["criteria"]] == [True] * 6
    assert any("whole: " in line for c in recorded["criteria"] for line in c["evidence"])


def test_a_day_ending_with_one_unresolved_diff_is_not_whole(tmp_path: Path) -> None:
    desk = open_desk(tmp_path / "desk")

    async def manual_order(_: Gateway) -> None:
        """Someone places an order in the broker's own app, on the same account."""
        other = SimAdapter("127.0.0.1", desk.sim.port, Secret(desk.sim.key), "sim")
        await other.connect()
        await other.authenticate()
        intent = OrderIntent("by-hand-1", "default", "AAPL", Side.BUY, OrderType.LIMIT, D(1),
                             D("1.00"), TimeInForce.DAY, time.time_ns())  # fmt: skip
        await other.place(intent)
        await other.close()

    async def settle_cash_only(g: Gateway) -> None:
        """The desk writes off the cash it reserves and reconciles again: the order stays."""
        recon = Reconciler(g, ReconConfig(settle_window=0))
        for diff in [d for d in g.book.open_diffs() if d.finding.kind is DiffKind.CASH]:
            await recon.resolve(diff.id, "WRITE_OFF", "desk", "reserved by the manual order")
        await recon.end_of_day(dt.date.fromisoformat(g.book.last_eod), desk.base / "data")

    try:
        desk.day(DayPlan(speed=2000, during=manual_order, after_close=settle_cash_only))
        days = criterion(desk.gate(), "trading days")
    finally:
        desk.sim.stop()
    assert not days.passed
    assert "left 1 diff(s) unresolved: D" in days.evidence[-1], days.evidence


def test_a_session_started_after_the_open_is_not_whole(tmp_path: Path) -> None:
    desk = open_desk(tmp_path / "desk")
    try:
        desk.day(DayPlan(speed=2000, start_before_open=-30 * 60))
        days = criterion(desk.gate(), "trading days")
    finally:
        desk.sim.stop()
    assert not days.passed
    assert "connected at 10:00" in days.evidence[-1] and "after the open" in days.evidence[-1]


def test_an_open_p0_fails_the_alerts(passed_desk: Desk, tmp_path: Path) -> None:
    desk = copy_desk(passed_desk, tmp_path / "desk")

    async def halt_and_leave() -> None:
        gateway = build_gateway(desk.profile(), desk.env)
        config = ServiceConfig(desk.base / "data", metrics_port=None, webhook=WEBHOOK)
        service = GatewayService(gateway, config)

        async def halt(g: Gateway) -> None:
            await g.set_trading_state("HALTED", "desk", "left halted")
            while "halted" not in service.alerts.open_alerts():
                await asyncio.sleep(0.05)
            service.request_stop()

        await asyncio.wait_for(service.run(halt), 30)

    asyncio.run(halt_and_leave())
    verdict = desk.gate()
    assert failing(verdict) == ["alerts"]
    assert "open P0 halted" in criterion(verdict, "alerts").evidence[0]


def test_a_stale_rollback_drill_fails_the_rollback(passed_desk: Desk, tmp_path: Path) -> None:
    desk = copy_desk(passed_desk, tmp_path / "desk")
    lenient = tmp_path / "gate.toml"  # only the rollback drill's age is at stake here
    lenient.write_text("drills_max_age_days = 30\nsafe_stop_max_age_days = 30\n")
    verdict = desk.gate(time.time_ns() + 8 * DAY_NS, lenient)
    assert failing(verdict) == ["rollback"]
    assert "stale: older than 7 days" in criterion(verdict, "rollback").evidence


def test_a_certificate_for_another_adapter_version_is_stale(
    passed_desk: Desk, tmp_path: Path
) -> None:
    desk = copy_desk(passed_desk, tmp_path / "desk")
    older = desk.livegate(
        "certify", f"{ROOT / 'tests' / 'gate_targets.py'}:sim_old_version", "--config",
        "profiles.toml", "--profile", "sim", "--only", "session", "--report", "certify-old",
    )  # fmt: skip
    assert "livegate.broker.sim.adapter 0.0.9" in older.stdout, older.stdout + older.stderr
    verdict = desk.gate()
    assert failing(verdict) == ["certification"]
    assert (
        "stale: certified livegate.broker.sim.adapter 0.0.9, this release runs"
        f" livegate.broker.sim.adapter {verdict.adapter.split()[-1]}"
    ) in criterion(verdict, "certification").evidence


def test_a_config_changed_since_certify_is_stale(passed_desk: Desk, tmp_path: Path) -> None:
    desk = copy_desk(passed_desk, tmp_path / "desk")
    rollout = desk.base / "rollout.toml"
    rollout.write_text(rollout.read_text().replace("500", "400"))
    verdict = desk.gate()
    assert failing(verdict) == ["certification", "rollback"]
    stale = criterion(verdict, "certification").evidence[-1]
    assert stale.startswith("stale: config changed since certify") and verdict.config_id in stale


def test_serve_refuses_a_live_profile_whose_gate_never_passed(tmp_path: Path) -> None:
    (tmp_path / "instruments.csv").write_text("symbol,tick_size\nAAPL,0.01\n")
    (tmp_path / "profiles.toml").write_text(
        '[profiles.live]\nenvironment = "live"\nbroker = "paper"\ndata_dir = "data"\n'
        'reference = "instruments.csv"\n'
    )
    desk = Desk(tmp_path, SimProcess(tmp_path, "unused"))
    base = ("serve", "--config", "profiles.toml", "--profile", "live", "--metrics-port", "0")
    refused = desk.livegate(*base, "--run-for", "1")
    assert refused.returncode == 2
    assert "refusing to start: the go-live gate never passed for profile 'live'" in refused.stderr
    half = desk.livegate(*base, "--override-gate", "--who", "ops")
    assert half.returncode == 2 and "needs --who and --why" in half.stderr
    overridden = desk.livegate(
        *base, "--override-gate", "--who", "ops", "--why", "first live day, canary caps",
        "--run-for", "3",
    )  # fmt: skip
    assert overridden.returncode == 0, overridden.stderr
    events = _events(tmp_path / "data")
    assert [(e.who, e.why) for e in events if isinstance(e, GateOverridden)] == [
        ("ops", "first live day, canary caps")
    ]
    raised = [e for e in events if isinstance(e, AlertChanged) and e.key == "gate-override"]
    assert raised and raised[0].level == "P1" and raised[0].state == "RAISED"

    # A passing verdict for exactly this release lets it start; a changed file does not.
    release = [e for e in events if isinstance(e, ReleaseRecorded)][-1]
    adapter = f"{release.adapter_module} {release.adapter_version}"
    write_evidence_command(tmp_path / "data" / "control", "gate", adapter, True, 0,
                           release.config_id, "{}", adapter)  # fmt: skip
    taken = desk.livegate("gate", "data")  # journals the waiting verdict (no gateway runs)
    assert taken.returncode == 1  # its own verdict: no whole day here, and so on
    allowed = desk.livegate(*base, "--run-for", "1")
    assert allowed.returncode == 0, allowed.stderr
    assert f"go-live gate passed for config {release.config_id}" in allowed.stdout
    (tmp_path / "instruments.csv").write_text("symbol,tick_size\nAAPL,0.01\nMSFT,0.01\n")
    changed = desk.livegate(*base, "--run-for", "1")
    assert changed.returncode == 2 and "never passed" in changed.stderr


def test_a_gate_file_with_a_typo_is_refused_by_name(passed_desk: Desk, tmp_path: Path) -> None:
    (tmp_path / "gate.toml").write_text("trading_dayz = 2\n")
    result = passed_desk.livegate("gate", "data", "--gate", str(tmp_path / "gate.toml"))
    assert result.returncode == 2
    assert "gate.toml" in result.stderr and "trading_dayz" in result.stderr


def _events(data: Path) -> list[object]:
    return [event for _, event in replay_file(data / "journal.sqlite")]


def test_a_gate_file_with_an_unknown_calendar_is_refused_by_name(tmp_path: Path) -> None:
    from livegate.gate.rules import load_gate_file
    from livegate.ops.profiles import ProfileError

    (tmp_path / "gate.toml").write_text('calendar = "XSGH"\n')
    with pytest.raises(ProfileError, match=r"gate\.toml: calendar 'XSGH' is not an"):
        load_gate_file(tmp_path / "gate.toml")
    (tmp_path / "gate.toml").write_text("max_outage_seconds = nan\n")
    with pytest.raises(ProfileError, match="max_outage_seconds"):
        load_gate_file(tmp_path / "gate.toml")
