"""The rollback drill: config A, then B, then back to A, against the sim broker.

It runs the loop a desk runs on a bad release, with the same parts:
profiles loaded by `serve`'s code, release records journaled at each
start, `livegate config rollback`'s function. A passes when, after the
rollback and a restart, the open orders and positions are what they were,
and the limits and stage are A's again (B's new stage is not in A's file:
the gateway falls back to A's first stage, journaled). The verdict is
journaled in the drill's journal, and, given a data folder, left there as
evidence for its gateway to journal (the go-live gate reads it).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from decimal import Decimal
from pathlib import Path

from livegate.drills.faults import Verdict
from livegate.drills.sim_process import SimProcess, until
from livegate.engine import Gateway
from livegate.engine.control import write_evidence_command
from livegate.model import OrderRequest, OrderStatus
from livegate.model.errors import LivegateError
from livegate.model.events import EvidenceRecorded
from livegate.model.samples import DEMO_START_PRICES
from livegate.ops.config_files import load_config
from livegate.ops.profiles import Profile, load_profiles
from livegate.ops.snapshots import rollback
from livegate.ops.wiring import build_gateway

D = Decimal
KEY_VARIABLE = "LIVEGATE_DRILL_SIM_KEY"
CHANGED_B = "\n# config B of the rollback drill\n"  # what B adds to each of a profile's files

PROFILES = """\
[profiles.drill]
environment = "sim"
broker = "sim"
port = {port}
api_key = "env:{variable}"
data_dir = "data"
{files}
[profiles.drill.gateway]
heartbeat_interval = 0.5
reconnect_delay = 0.1
"""
RISK_A = '[limits]\nmax_order_qty = "1000"\n\n[sessions]\noverride = "open"\n'
RISK_B = '[limits]\nmax_order_qty = "5"\n\n[sessions]\noverride = "open"\n'
ROLLOUT_A = """\
timezone = "UTC"

[stages.pilot]
max_orders_per_day = 500

[stages.full]
"""
ROLLOUT_B = """\
timezone = "UTC"

[stages.canary]
max_orders_per_day = 20

[stages.pilot]
max_orders_per_day = 500

[stages.full]
"""


async def run_rollback_drill(
    directory: Path, evidence_for: Path | None = None, profile: Profile | None = None
) -> Verdict:
    """With `profile`, config A is that profile's own files (risk, rollout, sessions,
    reference, copied as they are) on the sim broker, and the verdict is evidence for
    that profile's config; B is A with each file, the profiles file included, changed
    (a profile may name no other file). Without `profile`, a drill config of its own."""
    started = time.monotonic()
    verdict = Verdict("rollback")
    config = directory / "config"
    config.mkdir(parents=True, exist_ok=True)
    (directory / "sim").mkdir(exist_ok=True)
    key = f"lg_sim_{secrets.token_hex(12)}"
    files_a, files_b, proven_for = _drill_files(profile)
    sim = SimProcess(directory / "sim", key)
    sim.start()
    environ = {KEY_VARIABLE: key}
    profiles = config / "profiles.toml"
    roles = "".join(f'{role} = "{role}.toml"\n' for role in files_a)
    profiles_a = PROFILES.format(port=sim.port, variable=KEY_VARIABLE, files=roles)
    profiles.write_text(profiles_a)
    _write(config, files_a)
    own = profile is None

    def gateway() -> Gateway:
        return build_gateway(load_profiles(profiles)["drill"], environ)

    refusals: tuple[type[Exception], ...] = () if own else (LivegateError,)
    last: Gateway | None = None
    try:
        # Config A: resting orders and positions.
        a = last = gateway()
        await a.start()
        for symbol, price in DEMO_START_PRICES.items():
            await sim.control("quote", symbol=symbol, bid=str(price - D("0.01")),
                              ask=str(price + D("0.01")))  # fmt: skip
        symbols = list(DEMO_START_PRICES)
        for n, symbol in enumerate(symbols):
            # A profile's own limits, sessions or reference may refuse these: fine,
            # the drill then proves the rollback with what its config allowed.
            with contextlib.suppress(*refusals):
                await a.submit_order(
                    OrderRequest(symbol=symbol, side="BUY", quantity=10 + n, order_type="MARKET")
                )
                for level in range(3):
                    away = DEMO_START_PRICES[symbol] - D(5 + level)
                    await a.submit_order(
                        OrderRequest(symbol=symbol, side="BUY", quantity=1, price=away)
                    )
        await until(lambda: not [o for o in a.orders(open_only=True) if o.status is
                                 not OrderStatus.SUBMITTED], 10)  # fmt: skip
        open_a = sorted(o.client_order_id for o in a.orders(open_only=True))
        positions_a = {p.symbol: p.quantity for p in a.positions()}
        assert a.release is not None
        config_a = a.release.config_id
        limit_a = a.risk.limits.max_order_qty
        stage_a = a.rollout_stage
        await a.stop()
        ran = (bool(open_a) and bool(positions_a)) or not own  # a profile's may refuse orders
        verdict.check("config A ran", ran,
                      f"{len(open_a)} open orders, {len(positions_a)} positions")  # fmt: skip

        # Config B: a tighter limit and a new stage, promoted to (with a profile's
        # files: each of them changed, a new release).
        _write(config, files_b)
        if not own:  # the profiles file changes too: a profile may name no other file
            profiles.write_text(profiles_a + CHANGED_B)
        b = last = gateway()
        await b.start()
        assert b.release is not None
        if own:
            await b.set_rollout_stage("canary", "drill", "config B's new stage")
            probe = await b.submit_order(
                OrderRequest(symbol=symbols[0], side="BUY", quantity=10, price=D("1.00"))
            )
            in_force = probe.status is OrderStatus.REJECTED and b.rollout_stage == "canary"
            verdict.check("config B in force", in_force, f"a 10-lot: {probe.reject_reason}")
        else:
            changed = b.release.config_id != config_a
            verdict.check("config B in force", changed, f"release {b.release.config_id}")
        await b.stop()

        # Roll back to A, restart on it.
        restored = rollback(Path(load_profiles(profiles)["drill"].data_dir), config_a)
        wrote = profiles.read_text() == profiles_a and all(
            (config / f"{role}.toml").read_text() == text for role, text in files_a.items()
        )
        verdict.check("rollback wrote A's files", wrote, ", ".join(restored.written))
        again = last = gateway()
        await again.start()
        open_now = sorted(o.client_order_id for o in again.orders(open_only=True))
        at_broker = sorted(str(r.client_order_id) for r in await again.adapter.open_orders())
        positions_now = {p.symbol: p.quantity for p in again.positions()}
        verdict.check("open orders intact", open_now == open_a and at_broker == open_a,
                      f"{len(open_now)} open here, {len(at_broker)} at the broker")  # fmt: skip
        verdict.check("positions intact", positions_now == positions_a, str(positions_now))
        verdict.check("limits back to A's", again.risk.limits.max_order_qty == limit_a,
                      f"max_order_qty {again.risk.limits.max_order_qty}")  # fmt: skip
        verdict.check("stage back to A's", again.rollout_stage == stage_a,
                      f"stage {again.rollout_stage}")  # fmt: skip
        verdict.check("release A journaled again",
                      again.release is not None and again.release.config_id == config_a,
                      config_a)  # fmt: skip
        verdict.seconds = time.monotonic() - started
        evidence = EvidenceRecorded(
            "drill", "rollback", verdict.passed, int(verdict.seconds * 1000), config_a,
            _summary(verdict), time.time_ns(),
        )  # fmt: skip
        await again.record(evidence)
        await again.stop()
    except Exception as exc:  # a drill reports its failure, it does not crash
        verdict.check("drill ran to its end", False, f"{type(exc).__name__}: {exc}")
        if last is not None and last.running:
            await last.stop()
    finally:
        sim.stop()
    verdict.seconds = time.monotonic() - started
    if evidence_for is not None:
        write_evidence_command(
            evidence_for / "control", "drill", "rollback", verdict.passed,
            int(verdict.seconds * 1000), proven_for, _summary(verdict),
        )  # fmt: skip
    return verdict


def _drill_files(profile: Profile | None) -> tuple[dict[str, str], dict[str, str], str]:
    """(A's files by role, B's, the config id the verdict is evidence for)."""
    if profile is None:
        return (
            {"risk": RISK_A, "rollout": ROLLOUT_A},
            {"risk": RISK_B, "rollout": ROLLOUT_B},
            "",
        )
    loaded = load_config(profile)  # ProfileError on a bad file, before anything starts
    a = {f.role: f.content for f in loaded.files if f.role != "profiles"}
    b = {role: text + CHANGED_B for role, text in a.items()}
    return a, b, loaded.config_id


def _write(config: Path, files: dict[str, str]) -> None:
    for role, text in files.items():
        (config / f"{role}.toml").write_text(text, encoding="utf-8")


def _summary(verdict: Verdict) -> str:
    failed = [c.name for c in verdict.checks if not c.ok]
    return "all checks passed" if not failed else "failed: " + ", ".join(failed)
