"""What each console page shows, gathered from the journal view and the service's status.

Plain data for the templates: every figure here is read, never computed
twice in a template, so a page and `livegate orders` cannot disagree.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from livegate.model.diffs import Resolution
from livegate.model.enums import OrderStatus
from livegate.ops.views import JournalView

STALE_S = 10.0  # a status file older than this: the service may have died


def page_context(
    name: str, view: JournalView, directory: Path, query: dict[str, str]
) -> dict[str, Any]:
    builders = {
        "overview": _overview,
        "orders": _orders,
        "fills": _fills,
        "positions": _positions,
        "diffs": _diffs,
        "alerts": _alerts,
        "releases": _releases,
    }
    context = builders[name](view, directory, query)
    context["service"] = service_state(directory)
    context["when"] = when
    return context


def service_state(directory: Path) -> dict[str, Any]:
    """Up only when a gateway holds the journal and its status file is fresh."""
    from livegate.journal.locate import writer_running
    from livegate.ops.service import read_status

    try:
        status = read_status(directory) or {}
    except (OSError, ValueError):
        status = {}
    age = (time.time_ns() - status["updated_ns"]) / 1e9 if "updated_ns" in status else None
    locked = writer_running(directory / "journal.sqlite")
    up = locked and bool(status.get("running")) and age is not None and age < STALE_S
    return {"up": up, "locked": locked, "age": age, "status": status}


def when(ts_ns: int | None) -> str:
    if not ts_ns:
        return ""
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def _overview(view: JournalView, directory: Path, query: dict[str, str]) -> dict[str, Any]:
    book = view.book
    stats = view.stats()
    release = book.release
    alerts = sorted(view.open_alerts().values(), key=lambda a: (a.level, a.key))
    return {
        "trading_state": book.trading_state.value,
        "venue": "paper (fallback)" if release.on_paper else "configured broker",
        "stage": release.stage,
        "safe_stop_pending": release.safe_stop is not None,
        "last_safe_stop": release.last_safe_stop,
        "release": release.release,
        "stats": stats,
        "place_success": _rate(stats.place_success),
        "cancel_success": _rate(stats.cancel_success),
        "ack_median": _ms(stats.ack_ms_median),
        "ack_p99": _ms(stats.ack_ms_p99),
        "alerts": alerts,
        "alert_counts": {lvl: sum(a.level == lvl for a in alerts) for lvl in ("P0", "P1", "P2")},
        "open_diffs": len(book.open_diffs()),
        "recent_orders": view.orders(limit=10),
        "recent_fills": view.fills(limit=5),
        "last_seq": view.last_seq,
    }


def _orders(view: JournalView, directory: Path, query: dict[str, str]) -> dict[str, Any]:
    open_only = query.get("open") == "1"
    symbol = query.get("symbol", "")
    status = query.get("status", "")
    search = query.get("q", "").strip()
    if status and status not in OrderStatus.__members__:
        status = ""
    return {
        "orders": view.orders(open_only, symbol, status, search, limit=200),
        "open_only": open_only,
        "symbol": symbol,
        "status": status,
        "q": search,
        "symbols": view.symbols(),
        "statuses": list(OrderStatus.__members__),
        "stats": view.stats(),
    }


def _fills(view: JournalView, directory: Path, query: dict[str, str]) -> dict[str, Any]:
    return {"fills": view.fills(limit=200)}


def _positions(view: JournalView, directory: Path, query: dict[str, str]) -> dict[str, Any]:
    """Ours beside the broker's account as the running service last fetched it."""
    service = service_state(directory)
    broker = service["status"].get("broker_account") or {}
    theirs: dict[str, dict[str, Any]] = {p["symbol"]: p for p in broker.get("positions", [])}
    ours = {p.symbol: p for p in view.positions()}
    rows = []
    for symbol in sorted(set(ours) | set(theirs)):
        mine = ours.get(symbol)
        other = theirs.get(symbol)
        our_qty = mine.quantity if mine is not None else Decimal(0)
        their_qty = Decimal(str(other["quantity"])) if other is not None else None
        rows.append({
            "symbol": symbol,
            "ours": our_qty,
            "our_avg": mine.avg_price if mine is not None else None,
            "theirs": their_qty,
            "their_avg": other.get("avg_price") if other is not None else None,
            "differs": their_qty is not None and their_qty != our_qty,
        })  # fmt: skip
    return {
        "rows": rows,
        "cash": view.cash(),
        "broker": broker,
        "broker_at": when(broker.get("at_ns")),
        "broker_cash_differs": bool(broker)
        and Decimal(str(broker.get("cash"))) != view.cash().balance,
    }


def _diffs(view: JournalView, directory: Path, query: dict[str, str]) -> dict[str, Any]:
    show_all = query.get("all") == "1"
    return {
        "diffs": view.diffs(open_only=not show_all),
        "show_all": show_all,
        "resolutions": [r.value for r in Resolution if r is not Resolution.CLEARED],
    }


def _alerts(view: JournalView, directory: Path, query: dict[str, str]) -> dict[str, Any]:
    alerts = sorted(view.open_alerts().values(), key=lambda a: (a.level, a.key))
    return {"alerts": alerts, "history": view.alert_history(limit=50)}


def _releases(view: JournalView, directory: Path, query: dict[str, str]) -> dict[str, Any]:
    from livegate.ops.snapshots import group_releases

    known = list(reversed(group_releases(view.releases)))
    return {"releases": known, "current": view.book.release.release}
