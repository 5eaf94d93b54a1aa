"""livegate as akquant's trader gateway (`broker="livegate"`), registered by entry point.

`import akquant` calls `register()` for every plugin in its `akquant.brokers`
group, with no arguments, in every process, paper mode included: it must be
cheap and must not touch livegate's engine. The builder builds a trader that
does nothing until akquant calls `connect()` in `broker_live` mode
(docs/akquant.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NAME = "livegate"


def __getattr__(name: str) -> Any:
    """`AkquantBroker` (the other half: an akquant broker as a livegate adapter),
    imported only when asked for, so that `register()` stays cheap."""
    if name in ("AkquantBroker", "load_trader"):
        from livegate.broker.akquant import adapter

        return getattr(adapter, name)
    raise AttributeError(name)


def register() -> None:
    from akquant.gateway import register_broker

    register_broker(NAME, build)


def build(
    feed: Any = None, symbols: Sequence[str] = (), use_aggregator: bool = True, **options: Any
) -> Any:
    """akquant's builder: every gateway option arrives here, akquant's own included,
    so only `livegate_*` keys are read. No connect, no journal, no thread.

    With `livegate_market="<an akquant broker>"` (and `broker="livegate"` alone),
    that broker's market gateway is built here too, on a feed that also gives
    livegate each price: reference prices for its risk caps, and quotes for the
    embedded paper broker, so a paper profile fills at the market's prices.
    """
    from akquant.gateway import GatewayBundle, get_broker_builder

    from livegate.integrations.akquant.trader import LivegateTrader, PricedFeed

    trader = LivegateTrader(
        options.get("livegate_config"),
        options.get("livegate_profile"),
        metrics_port=options.get("livegate_metrics_port"),
    )
    market, metadata, history = None, {"broker": NAME}, None
    source = options.get("livegate_market")
    if source:
        inner = get_broker_builder(str(source))
        built = inner(
            feed=PricedFeed(feed, trader.mark),
            symbols=symbols,
            use_aggregator=use_aggregator,
            **options,
        )
        market, history = built.market_gateway, built.history_provider
        metadata = {**(built.metadata or {}), "broker": NAME, "market_broker": str(source)}
    return GatewayBundle(
        market_gateway=market,
        trader_gateway=trader,
        trader_capabilities=trader.get_capabilities(),
        metadata=metadata,
        history_provider=history,
    )
