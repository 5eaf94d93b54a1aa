"""The scenario matrix, in the order it runs: what each proves, and whether it is critical."""

from __future__ import annotations

from livegate.drills.certify import failure_cases as f
from livegate.drills.certify import scenarios as s
from livegate.drills.certify.scenarios import Scenario


def matrix(time_in_force: tuple[str, ...] = ("DAY",)) -> list[Scenario]:
    tifs = [
        Scenario(
            f"orders.tif-{t.lower()}",
            "orders",
            f"an order with time-in-force {t} is taken",
            s.time_in_force(t),
        )
        for t in time_in_force
    ]
    return [
        Scenario("session.connect", "session", "connects; start-up checks pass", s.connect),
        Scenario(
            "session.bad-key",
            "session",
            "a refused key is BrokerAuthError, nothing sent",
            s.bad_key,
        ),
        Scenario(
            "session.heartbeat",
            "session",
            "heartbeats answer; the clock is within limits",
            s.heartbeat,
            critical=False,
        ),
        Scenario(
            "session.reconnect", "session", "a dropped session reconnects and recovers", s.reconnect
        ),
        Scenario(
            "orders.limit-buy", "orders", "a limit buy works with the broker's id", s.working("BUY")
        ),
        Scenario(
            "orders.limit-sell",
            "orders",
            "a limit sell works with the broker's id",
            s.working("SELL"),
        ),
        Scenario("orders.market", "orders", "a market order fills, its fills add up", s.market),
        *tifs,
        Scenario(
            "orders.partial-then-full",
            "orders",
            "partly filled, then fully, fills once",
            s.partial_then_full,
        ),
        Scenario(
            "orders.cancel-working", "orders", "a working order is cancelled", s.cancel_working
        ),
        Scenario(
            "orders.cancel-finished",
            "orders",
            "cancelling a filled or cancelled order is idempotent",
            s.cancel_finished,
        ),
        Scenario(
            "orders.duplicate-submit",
            "orders",
            "a duplicate submit is sent once",
            s.duplicate_submit,
        ),
        Scenario(
            "rejects.off-tick", "rejects", "a price off the tick is REJECTED", f.refused("off-tick")
        ),
        Scenario(
            "rejects.unknown-symbol",
            "rejects",
            "an unknown symbol is REJECTED",
            f.refused("unknown-symbol"),
        ),
        Scenario(
            "rejects.insufficient-funds",
            "rejects",
            "an order beyond the cash is REJECTED",
            f.refused("insufficient-funds"),
        ),
        Scenario(
            "rejects.throttling",
            "rejects",
            "throttled orders end working or THROTTLED",
            f.throttling,
            critical=False,
        ),
        Scenario(
            "ambiguous.lost-place-answer",
            "ambiguous",
            "a place whose answer was lost is UNKNOWN, then resolved, never resent anew",
            f.lost_place_answer,
        ),
        Scenario(
            "ambiguous.lost-cancel-answer",
            "ambiguous",
            "a cancel whose answer was lost is learnt from the broker",
            f.lost_cancel_answer,
        ),
        Scenario(
            "recovery.restart-open-orders",
            "recovery",
            "after a restart, working orders work and can be cancelled",
            f.restart_open_orders,
        ),
        Scenario(
            "recovery.restart-with-fills",
            "recovery",
            "after a restart, today's fills count once",
            f.restart_with_fills,
        ),
        Scenario(
            "recovery.missed-while-down",
            "recovery",
            "a fill made while disconnected is counted once after reconnecting",
            f.missed_while_down,
        ),
        Scenario(
            "reconciliation.eod-clean",
            "reconciliation",
            "an end-of-day reconciliation finds nothing",
            f.eod_clean,
        ),
        Scenario(
            "kill-switch.safe-stop",
            "kill-switch",
            "HALTED, then every open order cancelled",
            f.safe_stop,
        ),
        Scenario(
            "faults.duplicated-reports",
            "faults",
            "every report twice: books still equal",
            f.stream_fault("duplicated"),
        ),
        Scenario(
            "faults.reordered-reports",
            "faults",
            "reports out of order: books still equal",
            f.stream_fault("reordered"),
        ),
        Scenario(
            "faults.delayed-reports",
            "faults",
            "slow reports: books still equal",
            f.stream_fault("delayed"),
        ),
        Scenario(
            "faults.split-fills",
            "faults",
            "an order filled in many parts, each report twice: each part counted once",
            f.split_fills,
        ),
        Scenario(
            "faults.sigkill",
            "faults",
            "the gateway SIGKILLed mid-stream three times: sent once, fills once, books equal",
            f.sigkill,
        ),
    ]


GROUPS = (
    "session",
    "orders",
    "rejects",
    "ambiguous",
    "recovery",
    "reconciliation",
    "kill-switch",
    "faults",
)
