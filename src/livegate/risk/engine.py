"""The pre-trade risk chain: every order passes it before the journal and the broker.

Each check is a few dictionary lookups and Decimal comparisons: open-order
totals are kept incrementally as orders change (`track`), never recomputed
by scanning the book. The first check that fails refuses the order with a
stable `RejectReason` and a message naming the values that tripped it.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from decimal import Decimal

from livegate.model.account import Position
from livegate.model.decimals import ZERO
from livegate.model.enums import RejectReason, Side, TradingState
from livegate.model.instrument import Instrument, InstrumentRegistry
from livegate.model.orders import Order, OrderIntent
from livegate.model.reports import Fill
from livegate.risk.limits import RiskLimits
from livegate.risk.reference import daily_limits
from livegate.risk.rollout import RolloutGuard
from livegate.risk.sessions import SessionGuard

R = RejectReason
Refusal = tuple[RejectReason, str]


class RiskEngine:
    def __init__(
        self,
        limits: RiskLimits,
        instruments: InstrumentRegistry,
        sessions: SessionGuard | None = None,
        rollout: RolloutGuard | None = None,
    ) -> None:
        self.limits = limits
        self.instruments = instruments
        self.sessions = sessions
        self.rollout = rollout  # the rollout stage's caps, checked before the limits
        # coid -> symbol, side, leaves, leaves at the order's own price (0: market)
        self._open: dict[str, tuple[str, Side, Decimal, Decimal]] = {}
        self._open_qty: dict[tuple[str, Side], Decimal] = defaultdict(lambda: ZERO)
        self._open_value: dict[tuple[str, Side], Decimal] = defaultdict(lambda: ZERO)
        self._reference: dict[str, tuple[Decimal, int]] = {}  # symbol -> price, ts_ns
        self._orders: deque[int] = deque()
        self._cancels: deque[int] = deque()
        self._recent: dict[tuple[str, Side, Decimal | None, Decimal], int] = {}
        # Exposure, kept per symbol and summed, recomputed only where it changed.
        self._contrib: dict[str, tuple[Decimal, Decimal]] = {}  # symbol -> gross, net
        self._gross = ZERO
        self._net = ZERO
        self._dirty: set[str] = set()
        self._positions_seen: dict[str, Position | None] = {}
        self._limits: dict[Instrument, tuple[Decimal, Decimal] | None] = {}

    # -- what the checks look at --------------------------------------------
    def set_reference_price(self, symbol: str, price: Decimal, ts_ns: int) -> None:
        """Last trade or mid, from the market data the host has."""
        previous = self._reference.get(symbol)
        self._reference[symbol] = (price, ts_ns)
        if previous is None or previous[0] != price:
            self._dirty.add(symbol)

    def track(self, order: Order) -> None:
        """Follow an order's open quantity; the gateway calls this on every change."""
        coid = order.client_order_id
        self._dirty.add(order.symbol)  # its open quantity or its position changed
        self.forget(coid)
        leaves = order.leaves_qty  # an UNKNOWN order may be live: it counts too
        if order.status.is_open and leaves > 0:
            value = leaves * order.price if order.price is not None else ZERO
            self._open[coid] = (order.symbol, order.side, leaves, value)
            self._open_qty[order.symbol, order.side] += leaves
            self._open_value[order.symbol, order.side] += value

    def filled(self, fill: Fill, now_ns: int) -> None:
        """A fill applied: it uses up the rollout stage's daily notional."""
        if self.rollout is not None:
            self.rollout.traded(fill, self._multiplier(fill.symbol), now_ns)

    def _multiplier(self, symbol: str) -> Decimal:
        known = symbol in self.instruments
        return self.instruments.get(symbol).multiplier if known else Decimal(1)

    def forget(self, client_order_id: str) -> None:
        """An order that never became durable: it holds no room."""
        previous = self._open.pop(client_order_id, None)
        if previous is not None:
            self._open_qty[previous[0], previous[1]] -= previous[2]
            self._open_value[previous[0], previous[1]] -= previous[3]

    def rebuild(
        self,
        orders: Iterable[Order],
        day: Iterable[Order] = (),
        fills: Iterable[Fill] = (),
        now_ns: int | None = None,
        retired: Iterable[tuple[int, int, Decimal]] = (),
    ) -> None:
        """Open orders to follow; `day` and `fills` (all those held) for the rollout usage,
        counted for the day `now_ns` falls on (the gateway's clock); `retired`: what
        orders out of memory used, as (quarter hour start, orders, notional)."""
        if self.rollout is not None:
            now = time.time_ns() if now_ns is None else now_ns
            self.rollout.rebuild(day, fills, self._multiplier, now, retired)
        self._open.clear()
        self._open_qty.clear()
        self._open_value.clear()
        self._contrib.clear()
        self._positions_seen.clear()
        self._gross = self._net = ZERO
        for order in orders:
            self.track(order)

    @property
    def open_orders(self) -> int:
        return len(self._open)

    # -- the chain -------------------------------------------------------------
    def check(
        self,
        intent: OrderIntent,
        positions: Mapping[str, Position],
        now_ns: int,
        state: TradingState = TradingState.ACTIVE,
        stage: str | None = None,
        reduce_only: bool = False,
    ) -> Refusal | None:
        """`stage`: the rollout stage in force; `reduce_only`: a safe-stop's flattening
        order, which passes a HALTED gateway and the rollout caps if it shrinks a position."""
        lim = self.limits
        symbol, side, qty, price = intent.symbol, intent.side, intent.quantity, intent.price
        position = positions.get(symbol)
        pos = position.quantity if position is not None else ZERO
        open_buy = self._open_qty.get((symbol, Side.BUY), ZERO)
        open_sell = self._open_qty.get((symbol, Side.SELL), ZERO)

        if reduce_only:
            state = TradingState.REDUCING
        if state is TradingState.HALTED:
            return R.KILL_SWITCH, "trading is HALTED: no new orders"
        if state is TradingState.REDUCING:
            reduces = (
                pos < 0 and pos + open_buy + qty <= 0
                if side is Side.BUY
                else pos > 0 and pos - open_sell - qty >= 0
            )
            if not reduces:
                return R.REDUCE_ONLY, (
                    f"trading is REDUCING: {side} {qty} {symbol} does not reduce position {pos}"
                    f" (open buys {open_buy}, open sells {open_sell})"
                )

        instrument = self.instruments.get(symbol)
        if self.rollout is not None and not reduce_only:
            refusal = self._rollout(intent, stage, now_ns, positions, pos, open_buy, open_sell)
            if refusal is not None:
                return refusal
        if self.sessions is not None and not self.sessions.is_open(instrument.exchange, now_ns):
            return R.SESSION_CLOSED, f"{instrument.exchange or symbol} is not in a trading session"

        if price is not None:
            if instrument in self._limits:
                limits = self._limits[instrument]
            else:
                limits = self._limits[instrument] = daily_limits(instrument)
            if limits is not None and not limits[0] <= price <= limits[1]:
                return R.PRICE_LIMIT, (
                    f"price {price} outside today's limits {limits[0]}..{limits[1]} for {symbol}"
                )

        reference = self._reference.get(symbol)
        fresh = reference is not None and (
            now_ns - reference[1] <= lim.reference_max_age_seconds * 1e9
        )
        if lim.price_band_pct is not None and price is not None:
            if not fresh:
                return R.PRICE_BAND, f"no reference price for {symbol} within the staleness limit"
            ref = reference[0]  # type: ignore[index]
            band = ref * lim.price_band_pct
            if abs(price - ref) > band:
                return R.PRICE_BAND, (
                    f"price {price} deviates from reference {ref} by more than"
                    f" {lim.price_band_pct:%}"
                )

        if lim.max_order_qty is not None and qty > lim.max_order_qty:
            return R.RISK_MAX_QTY, f"quantity {qty} > max_order_qty {lim.max_order_qty}"

        value_price = price if price is not None else (reference[0] if fresh else None)  # type: ignore[index]
        multiplier = instrument.multiplier
        needs_value = lim.max_order_notional is not None or lim.max_gross_exposure is not None
        if value_price is None and (needs_value or lim.max_net_exposure is not None):
            return R.RISK_MAX_NOTIONAL, f"no price to value a {intent.order_type} order in {symbol}"
        if lim.max_order_notional is not None:
            notional = qty * value_price * multiplier  # type: ignore[operator]
            if notional > lim.max_order_notional:
                return R.RISK_MAX_NOTIONAL, (
                    f"notional {notional} > max_order_notional {lim.max_order_notional}"
                )

        if lim.max_open_orders is not None and len(self._open) >= lim.max_open_orders:
            return R.RISK_MAX_OPEN_ORDERS, (
                f"{len(self._open)} open orders: max_open_orders is {lim.max_open_orders}"
            )

        if lim.max_position is not None:
            worst = pos + open_buy + qty if side is Side.BUY else pos - open_sell - qty
            if abs(worst) > lim.max_position:
                return R.RISK_POSITION_LIMIT, (
                    f"{symbol} position could reach {worst} (position {pos}, open buys"
                    f" {open_buy}, open sells {open_sell}): max_position {lim.max_position}"
                )

        if lim.max_gross_exposure is not None or lim.max_net_exposure is not None:
            refusal = self._exposure(intent, value_price, positions)  # type: ignore[arg-type]
            if refusal is not None:
                return refusal

        if lim.duplicate_window_seconds is not None:
            key = (symbol, side, price, qty)
            last = self._recent.get(key)
            if last is not None and now_ns - last <= lim.duplicate_window_seconds * 1e9:
                return R.RISK_DUPLICATE_ORDER, (
                    f"same {side} {qty} {symbol} @ {price} sent {(now_ns - last) / 1e6:.0f} ms ago"
                )

        if lim.max_orders_per_window is not None:
            self._expire(self._orders, now_ns)
            if len(self._orders) >= lim.max_orders_per_window:
                return R.RISK_RATE_LIMIT, (
                    f"{len(self._orders)} orders in the last {lim.rate_window_seconds}s:"
                    f" max_orders_per_window is {lim.max_orders_per_window}"
                )
        return None

    def passed(self, intent: OrderIntent, now_ns: int) -> None:
        """Count an order that passed (it uses up rate and duplicate-guard room)."""
        if self.rollout is not None:
            self.rollout.sent(now_ns)
        if self.limits.max_orders_per_window is not None:
            self._orders.append(now_ns)
        if self.limits.duplicate_window_seconds is not None:
            self._recent[intent.symbol, intent.side, intent.price, intent.quantity] = now_ns
            if len(self._recent) > 10_000:
                horizon = now_ns - int(self.limits.duplicate_window_seconds * 1e9)
                self._recent = {k: t for k, t in self._recent.items() if t >= horizon}

    def check_cancel(self, now_ns: int) -> Refusal | None:
        """Cancels are never refused for session or state, only for their rate."""
        lim = self.limits
        if lim.max_cancels_per_window is None:
            return None
        self._expire(self._cancels, now_ns)
        if len(self._cancels) >= lim.max_cancels_per_window:
            return R.RISK_RATE_LIMIT, (
                f"{len(self._cancels)} cancels in the last {lim.rate_window_seconds}s:"
                f" max_cancels_per_window is {lim.max_cancels_per_window}"
            )
        self._cancels.append(now_ns)
        return None

    def _expire(self, times: deque[int], now_ns: int) -> None:
        horizon = now_ns - int(self.limits.rate_window_seconds * 1e9)
        while times and times[0] <= horizon:
            times.popleft()

    def _rollout(
        self,
        intent: OrderIntent,
        stage: str | None,
        now_ns: int,
        positions: Mapping[str, Position],
        pos: Decimal,
        open_buy: Decimal,
        open_sell: Decimal,
    ) -> Refusal | None:
        assert self.rollout is not None
        qty = intent.quantity
        worst = pos + open_buy + qty if intent.side is Side.BUY else pos - open_sell - qty
        price = intent.price
        if price is None:
            reference = self._reference.get(intent.symbol)
            price = reference[0] if reference is not None else None
        multiplier = self._multiplier(intent.symbol)
        value = qty * price * multiplier if price is not None else None

        def gross_after() -> Decimal:
            return self.exposure(positions)[0] + (value or ZERO)

        return self.rollout.check(intent, stage, now_ns, value, worst, gross_after)

    def exposure(self, positions: Mapping[str, Position]) -> tuple[Decimal, Decimal]:
        """(gross, net) of what is held and working now.

        What is already held or working is valued at the reference price
        (else the position's average). Each symbol's share is recomputed only
        when its position, open orders or reference price changed, so this
        costs the same with 5 symbols or 500.
        """
        seen = self._positions_seen
        if len(seen) != len(positions):
            self._dirty.update(s for s in positions if s not in seen)
        for symbol in self._dirty:
            held = positions.get(symbol)
            seen[symbol] = held
            old_gross, old_net = self._contrib.get(symbol, (ZERO, ZERO))
            gross, net = self._symbol_exposure(symbol, held)
            self._contrib[symbol] = (gross, net)
            self._gross += gross - old_gross
            self._net += net - old_net
        self._dirty.clear()
        return self._gross, self._net

    def _exposure(
        self, intent: OrderIntent, value_price: Decimal, positions: Mapping[str, Position]
    ) -> Refusal | None:
        """Gross and net exposure, open orders included, if this order were added
        at its own price."""
        lim = self.limits
        held_gross, held_net = self.exposure(positions)
        new = intent.quantity * value_price * self.instruments.get(intent.symbol).multiplier
        gross = held_gross + new
        net = held_net + (new if intent.side is Side.BUY else -new)
        if lim.max_gross_exposure is not None and gross > lim.max_gross_exposure:
            return R.RISK_EXPOSURE, (
                f"gross exposure would be {gross}: max_gross_exposure {lim.max_gross_exposure}"
            )
        if lim.max_net_exposure is not None and abs(net) > lim.max_net_exposure:
            return R.RISK_EXPOSURE, (
                f"net exposure would be {net}: max_net_exposure {lim.max_net_exposure}"
            )
        return None

    def _symbol_exposure(self, symbol: str, held: Position | None) -> tuple[Decimal, Decimal]:
        """Held and working, at the reference price; with none, what is held at its
        average and what is working at its own limit price."""
        ref = self._reference.get(symbol)
        multiplier = self._multiplier(symbol)
        pos = held.quantity if held is not None else ZERO
        if ref is not None:
            buys = self._open_qty.get((symbol, Side.BUY), ZERO)
            sells = self._open_qty.get((symbol, Side.SELL), ZERO)
            return (
                (abs(pos) + buys + sells) * ref[0] * multiplier,
                (pos + buys - sells) * ref[0] * multiplier,
            )
        held_value = pos * (held.avg_price if held is not None else ZERO)
        buying = self._open_value.get((symbol, Side.BUY), ZERO)
        selling = self._open_value.get((symbol, Side.SELL), ZERO)
        return (
            (abs(held_value) + buying + selling) * multiplier,
            (held_value + buying - selling) * multiplier,
        )
