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
    so only `livegate_*` keys are read. No connect, no journal, no thread."""
    from akquant.gateway import GatewayBundle

    from livegate.integrations.akquant.trader import LivegateTrader

    trader = LivegateTrader(
        options.get("livegate_config"),
        options.get("livegate_profile"),
        metrics_port=options.get("livegate_metrics_port"),
    )
    return GatewayBundle(
        market_gateway=None,
        trader_gateway=trader,
        trader_capabilities=trader.get_capabilities(),
        metadata={"broker": NAME},
    )
